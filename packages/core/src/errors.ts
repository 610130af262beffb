import { UserError } from '@evop/config';
/** A search option evop cannot use; names the option and why. */
export class SearchOptionError extends UserError {
  override readonly name = 'SearchOptionError';
  constructor(
    readonly option: string,
    readonly reason: string,
  ) {
    super(`${option}: ${reason}`);
  }
}
