import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { OBJECTIVES, STRATEGIES } from '@evop/core';
import { TASKS } from '@evop/data';
import { parseSearchSpec, type SearchSpec } from '@evop/pipeline';
import { CliError } from './cli-error.ts';

/** Everything a prune run depends on; saved as spec.json so that `--resume` continues the same run. */
export type PruneSpec = SearchSpec & {
  model: string;
  tokenizer: string | undefined;
  data: string[];
  /** Corpora never calibrated on, whose held-out perplexity is reported each on its own (absolute paths). */
  evalData: string[];
};

export type RawOptions = Record<string, string | boolean | string[] | undefined>;

/** A flag's integer, or undefined when absent (its default and bounds are the spec schema's). */
function int(options: RawOptions, name: string): number | undefined {
  const raw = options[name];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value)) throw new CliError(`--${name}: expected an integer, got '${raw}'`);
  return value;
}

function oneOf<T extends string>(options: RawOptions, name: string, allowed: readonly T[]): T | undefined {
  const raw = options[name] as string | undefined;
  if (raw !== undefined && !(allowed as readonly string[]).includes(raw))
    throw new CliError(`--${name}: '${raw}' is not one of ${allowed.join(', ')}`);
  return raw as T | undefined;
}

/**
 * Checks the command line of `evop prune` into a spec, through the spec's own schema (its defaults and bounds): a
 * bad value throws a UserError whose message names the flag (`userMessage`).
 */
export function pruneSpec(options: RawOptions): PruneSpec {
  const model = options.model as string | undefined;
  if (!model)
    throw new CliError('--model: required (an ONNX model, or a llama2.c checkpoint with --tokenizer)');
  const data = (options.data as string[] | undefined) ?? [];
  if (data.length === 0) throw new CliError('--data: required (one or more text or JSONL corpora)');
  const evalData = ((options['eval-data'] as string[] | undefined) ?? []).map((file) => resolve(file));
  for (const file of evalData)
    if (!existsSync(file)) throw new CliError(`--eval-data: no such file '${file}'`);
  if ((options.remove === undefined) === (options.sparsity === undefined))
    throw new CliError('give exactly one of --remove N (units to prune) or --sparsity F (fraction of units)');
  const target =
    options.remove !== undefined ? { units: int(options, 'remove') } : { fraction: Number(options.sparsity) };
  const tasks = ((options.tasks as string | undefined) ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  for (const t of tasks)
    if (!(t in TASKS))
      throw new CliError(`--tasks: unknown task '${t}'; use ${Object.keys(TASKS).join(', ')}`);
  const spec = parseSearchSpec({
    target,
    granularity: oneOf(options, 'granularity', ['layer', 'sublayer'] as const),
    strategy: oneOf(options, 'strategy', STRATEGIES),
    objective: oneOf(options, 'objective', OBJECTIVES),
    seed: int(options, 'seed'),
    budget: int(options, 'budget'),
    calibration: int(options, 'calibration'),
    heldOut: int(options, 'held-out'),
    clusters: int(options, 'clusters'),
    sampling: oneOf(options, 'sampling', ['ccds', 'random'] as const),
    seqLen: int(options, 'seq-len'),
    tasks,
    taskLimit: int(options, 'task-limit'),
    baselines: options.baselines === true,
  });
  return { model, tokenizer: options.tokenizer as string | undefined, data, evalData, ...spec };
}
