/** A search option evop cannot use; names the option and why. */
export class SearchOptionError extends Error {
  override readonly name = 'SearchOptionError';
  constructor(
    readonly option: string,
    readonly reason: string,
  ) {
    super(`${option}: ${reason}`);
  }
}
