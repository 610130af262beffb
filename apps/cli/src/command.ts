import { type Command, InvalidArgumentError } from 'commander';
import { CliError } from './cli-error.ts';

/** What an evop command's action gets: its options keyed by flag name (`held-out`, not `heldOut`). */
export type RawOptions = Record<string, string | number | boolean | string[] | undefined>;

const exitCodes = new WeakMap<Command, number>();

function rootOf(command: Command): Command {
  let root = command;
  while (root.parent) root = root.parent;
  return root;
}

/**
 * An action for commander that runs `body` with the command's positional arguments and its options keyed by flag
 * name, and records the exit code it returns for `exitCodeOf` (commander ignores an action's return value).
 */
export function run(
  body: (args: string[], options: RawOptions) => Promise<number>,
): (...args: unknown[]) => Promise<void> {
  return async function (this: Command) {
    const options: RawOptions = {};
    const values = this.opts();
    for (const option of this.options) {
      const value = values[option.attributeName()];
      if (value !== undefined) options[option.name()] = value as RawOptions[string];
    }
    exitCodes.set(rootOf(this), await body(this.processedArgs as string[], options));
  };
}

/** The exit code the action that ran under `program` returned (0 when none ran, as for --help). */
export function exitCodeOf(program: Command): number {
  return exitCodes.get(program) ?? 0;
}

/** A flag's value as an integer ≥ `min`; commander names the flag in the error. */
export function integer(min = 0): (raw: string) => number {
  return (raw) => {
    const value = Number(raw);
    if (raw.trim() === '' || !Number.isInteger(value)) throw new InvalidArgumentError('expected an integer.');
    if (value < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}.`);
    return value;
  };
}

/** A flag's value as a finite number. */
export function decimal(raw: string): number {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value)) throw new InvalidArgumentError('expected a number.');
  return value;
}

/**
 * Loads a part of the service (its database, API, coordinator, workers). An installed `evop` is the command-line
 * tool and the service's client without them: the service runs from a checkout or its containers.
 */
export async function serviceModule<T>(load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new CliError(
      'this evop is the command-line tool and the service client; the service itself runs from a checkout of ' +
        'the repository (npm run stack) or its containers (docker compose up)',
    );
  }
}
