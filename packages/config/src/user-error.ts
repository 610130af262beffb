/**
 * Input evop cannot use: the user's to fix, not evop failing. Every package's input errors extend it, so that
 * each caller decides by kind: the CLI exits 2 with the message as one line, the API answers 4xx, a coordinator
 * fails the job on its input (logged as a warning, never retried). The message names the field, flag, file or
 * variable at fault and why.
 */
export class UserError extends Error {
  override readonly name: string = 'UserError';
}
