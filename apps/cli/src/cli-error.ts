import { UserError } from '@evop/config';
import { PipelineError } from '@evop/pipeline';

/** A command line evop cannot act on: printed as one line, exit code 2. */
export class CliError extends UserError {
  override readonly name = 'CliError';
}

/** The flag of `evop prune` that sets a spec field. */
const FLAG_OF: Record<string, string> = {
  'target.units': '--remove',
  'target.fraction': '--sparsity',
  target: '--remove',
  front: '--targets',
  data: '--data',
  heldOut: '--held-out',
  seqLen: '--seq-len',
  taskLimit: '--task-limit',
};

/** A user error's one line, naming the flag rather than the spec field. */
export function userMessage(err: UserError): string {
  if (err instanceof PipelineError) {
    // A front target's field (`front.2.units`) is the list's item after the first (the run's own target).
    const item = /^front\.(\d+)/.exec(err.field);
    if (item) return `--targets: target ${Number(item[1]) + 2} of the list: ${err.reason}`;
    return `${FLAG_OF[err.field] ?? `--${err.field}`}: ${err.reason}`;
  }
  return err.message;
}
