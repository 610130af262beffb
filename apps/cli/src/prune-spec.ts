import { OBJECTIVES, STRATEGIES, type Target } from '@evop/core';
import { TASKS, type TaskName } from '@evop/data';
import type { SearchSpec } from '@evop/pipeline';
import { CliError } from './cli-error.ts';

/** Everything a prune run depends on; saved as spec.json so that `--resume` continues the same run. */
export type PruneSpec = SearchSpec & {
  model: string;
  tokenizer: string | undefined;
  data: string[];
};

export type RawOptions = Record<string, string | boolean | string[] | undefined>;

function int(options: RawOptions, name: string, fallback: number, min: number): number {
  const raw = options[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min)
    throw new CliError(`--${name}: expected an integer ≥ ${min}, got '${raw}'`);
  return value;
}

function oneOf<T extends string>(options: RawOptions, name: string, allowed: readonly T[], fallback: T): T {
  const raw = (options[name] as string | undefined) ?? fallback;
  if (!(allowed as readonly string[]).includes(raw))
    throw new CliError(`--${name}: '${raw}' is not one of ${allowed.join(', ')}`);
  return raw as T;
}

/** Checks the command line of `evop prune` into a spec; a bad value throws a CliError naming the flag. */
export function pruneSpec(options: RawOptions): PruneSpec {
  const model = options.model as string | undefined;
  if (!model)
    throw new CliError('--model: required (an ONNX model, or a llama2.c checkpoint with --tokenizer)');
  const data = (options.data as string[] | undefined) ?? [];
  if (data.length === 0) throw new CliError('--data: required (one or more text or JSONL corpora)');
  if ((options.remove === undefined) === (options.sparsity === undefined))
    throw new CliError('give exactly one of --remove N (units to prune) or --sparsity F (fraction of units)');
  let target: Target;
  if (options.remove !== undefined) target = { units: int(options, 'remove', 0, 1) };
  else {
    const f = Number(options.sparsity);
    if (!(f > 0 && f < 1))
      throw new CliError(`--sparsity: expected a fraction in (0, 1), got '${options.sparsity}'`);
    target = { fraction: f };
  }
  const tasks = ((options.tasks as string | undefined) ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  for (const t of tasks)
    if (!(t in TASKS))
      throw new CliError(`--tasks: unknown task '${t}'; use ${Object.keys(TASKS).join(', ')}`);
  return {
    model,
    tokenizer: options.tokenizer as string | undefined,
    data,
    target,
    granularity: oneOf(options, 'granularity', ['layer', 'sublayer'] as const, 'layer'),
    strategy: oneOf(options, 'strategy', STRATEGIES, 'evop'),
    objective: oneOf(options, 'objective', OBJECTIVES, 'mean'),
    seed: int(options, 'seed', 0, 0),
    budget: int(options, 'budget', 1000, 1),
    calibration: int(options, 'calibration', 32, 1),
    heldOut: int(options, 'held-out', 64, 1),
    clusters: int(options, 'clusters', 8, 1),
    sampling: oneOf(options, 'sampling', ['ccds', 'random'] as const, 'ccds'),
    seqLen: int(options, 'seq-len', 256, 2),
    tasks: tasks as TaskName[],
    taskLimit: int(options, 'task-limit', 200, 1),
    baselines: options.baselines === true,
  };
}
