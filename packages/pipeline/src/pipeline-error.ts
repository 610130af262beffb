/**
 * Input the pipeline cannot run on, named by the spec field at fault (`data`, `target.units`, `calibration`…),
 * so that the CLI can name its flag and the service its JSON field.
 */
export class PipelineError extends Error {
  override readonly name = 'PipelineError';
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}
