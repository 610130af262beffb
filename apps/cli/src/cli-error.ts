import { ConfigError, DataFileNotFoundError } from '@evop/config';
import { SearchOptionError } from '@evop/core';
import { CorpusError, TaskFileError, TokenizerFileError } from '@evop/data';
import { MaskError, ModelError } from '@evop/onnx';
import { PipelineError } from '@evop/pipeline';
import { ProviderUnavailableError, UnsupportedInputError } from '@evop/runtime';

/** A command line evop cannot act on: printed as one line, exit code 2. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

const USER_ERRORS = [
  CliError,
  PipelineError,
  ConfigError,
  DataFileNotFoundError,
  SearchOptionError,
  CorpusError,
  TaskFileError,
  TokenizerFileError,
  MaskError,
  ModelError,
  ProviderUnavailableError,
  UnsupportedInputError,
];

/** Whether an error is the user's input being wrong (exit 2), rather than evop failing (exit 1). */
export function isUserError(err: unknown): err is Error {
  return USER_ERRORS.some((type) => err instanceof type);
}

/** The flag of `evop prune` that sets a spec field. */
const FLAG_OF: Record<string, string> = {
  'target.units': '--remove',
  'target.fraction': '--sparsity',
  target: '--remove',
  data: '--data',
  heldOut: '--held-out',
  seqLen: '--seq-len',
};

/** A user error's one line, naming the flag rather than the spec field. */
export function userMessage(err: Error): string {
  if (err instanceof PipelineError) return `${FLAG_OF[err.field] ?? `--${err.field}`}: ${err.reason}`;
  return err.message;
}
