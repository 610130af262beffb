import { UserError } from '@evop/config';
/**
 * Input the pipeline cannot run on, named by the spec field at fault (`data`, `target.units`, `calibration`…),
 * so that the CLI can name its flag and the service its JSON field.
 */
export class PipelineError extends UserError {
  override readonly name = 'PipelineError';
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}
