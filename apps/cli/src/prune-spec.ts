import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { TASKS } from '@evop/data';
import { parseSearchSpec, type SearchSpec } from '@evop/pipeline';
import { CliError } from './cli-error.ts';
import type { RawOptions } from './command.ts';

/** Everything a prune run depends on; saved as spec.json so that `--resume` continues the same run. */
export type PruneSpec = SearchSpec & {
  model: string;
  tokenizer: string | undefined;
  data: string[];
  /** Corpora never calibrated on, whose held-out perplexity is reported each on its own (absolute paths). */
  evalData: string[];
};

/**
 * The search spec the flags of `specOptions` give (their values typed by commander), checked by the spec's own
 * schema (its bounds): a bad value throws a UserError whose message names the flag (`userMessage`).
 */
export function searchSpecOf(options: RawOptions): SearchSpec {
  if ((options.remove === undefined) === (options.sparsity === undefined))
    throw new CliError('give exactly one of --remove N (units to prune) or --sparsity F (fraction of units)');
  const target = options.remove !== undefined ? { units: options.remove } : { fraction: options.sparsity };
  const tasks = ((options.tasks as string | undefined) ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  for (const t of tasks)
    if (!(t in TASKS))
      throw new CliError(`--tasks: unknown task '${t}'; use ${Object.keys(TASKS).join(', ')}`);
  return parseSearchSpec({
    target,
    granularity: options.granularity,
    strategy: options.strategy,
    objective: options.objective,
    seed: options.seed,
    budget: options.budget,
    calibration: options.calibration,
    heldOut: options['held-out'],
    clusters: options.clusters,
    sampling: options.sampling,
    seqLen: options['seq-len'],
    tasks,
    taskLimit: options['task-limit'],
    baselines: options.baselines === true,
    balance: options.balance,
  });
}

/** `evop prune`'s command line as a run's spec: the search spec, and where the model and the data are. */
export function pruneSpec(options: RawOptions): PruneSpec {
  const model = options.model as string | undefined;
  if (!model)
    throw new CliError('--model: required (an ONNX model, or a llama2.c checkpoint with --tokenizer)');
  const data = (options.data as string[] | undefined) ?? [];
  if (data.length === 0) throw new CliError('--data: required (one or more text or JSONL corpora)');
  const evalData = ((options['eval-data'] as string[] | undefined) ?? []).map((file) => resolve(file));
  for (const file of evalData)
    if (!existsSync(file)) throw new CliError(`--eval-data: no such file '${file}'`);
  return {
    model,
    tokenizer: options.tokenizer as string | undefined,
    data,
    evalData,
    ...searchSpecOf(options),
  };
}
