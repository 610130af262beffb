import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from './user-error.ts';

/** Thrown when a model or data file is in none of the places the resolver searches. */
export class DataFileNotFoundError extends UserError {
  override readonly name = 'DataFileNotFoundError';
  constructor(
    readonly file: string,
    readonly searched: string[],
  ) {
    super(`data file '${file}' not found; searched: ${searched.join(', ')}`);
  }
}

/** The repository root, found from this file so that the resolver works from any working directory. */
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * The folders searched for test models and data, in order: `EVOP_DATA_DIR`, the checkout's sibling
 * `../shared/data`, then the user cache `~/.cache/evop` (where a user's machine keeps fetched copies).
 */
export function dataDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs = [join(repoRoot, '..', 'shared', 'data'), join(homedir(), '.cache', 'evop')];
  return env.EVOP_DATA_DIR ? [resolve(env.EVOP_DATA_DIR), ...dirs] : dirs;
}

/** Absolute path of a data file such as `stories260K/stories260K.bin`, from the first folder that has it. */
export function resolveDataFile(file: string, env: NodeJS.ProcessEnv = process.env): string {
  const candidates = dataDirs(env).map((dir) => join(dir, file));
  const found = candidates.find((path) => existsSync(path));
  if (!found) throw new DataFileNotFoundError(file, candidates);
  return found;
}
