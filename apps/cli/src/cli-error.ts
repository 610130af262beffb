import { ConfigError, DataFileNotFoundError } from '@evop/config';
import { SearchOptionError } from '@evop/core';
import { CorpusError, TaskFileError, TokenizerFileError } from '@evop/data';
import { MaskError, ModelError } from '@evop/onnx';
import { ProviderUnavailableError } from '@evop/runtime';

/** A command line evop cannot act on: printed as one line, exit code 2. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

const USER_ERRORS = [
  CliError,
  ConfigError,
  DataFileNotFoundError,
  SearchOptionError,
  CorpusError,
  TaskFileError,
  TokenizerFileError,
  MaskError,
  ModelError,
  ProviderUnavailableError,
];

/** Whether an error is the user's input being wrong (exit 2), rather than evop failing (exit 1). */
export function isUserError(err: unknown): err is Error {
  return USER_ERRORS.some((type) => err instanceof type);
}
