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
  const given = ['remove', 'sparsity', 'targets'].filter((flag) => options[flag] !== undefined);
  if (given.length !== 1)
    throw new CliError(
      'give exactly one of --remove N (units to prune), --sparsity F (fraction of units) or --targets 2,4,6 (a front)',
    );
  const [target, ...front] =
    options.targets !== undefined
      ? targetList(options.targets as string)
      : [options.remove !== undefined ? { units: options.remove } : { fraction: options.sparsity }];
  const tasks = ((options.tasks as string | undefined) ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  for (const t of tasks)
    if (!(t in TASKS))
      throw new CliError(`--tasks: unknown task '${t}'; use ${Object.keys(TASKS).join(', ')}`);
  return parseSearchSpec({
    target,
    front,
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

/**
 * `--targets`' list: each item a number of units (an integer), a fraction of the units (between 0 and 1), as
 * `--remove` and `--sparsity` take them, or a range of unit counts `FROM-TO` or `FROM-TO:STEP` (2-8:2 is 2,4,6,8).
 */
function targetList(list: string): ({ units: number } | { fraction: number })[] {
  const items = list.split(',').flatMap((item) => {
    const range = /^\s*(\d+)\s*-\s*(\d+)\s*(?::\s*(\d+)\s*)?$/.exec(item);
    if (!range) return [item.trim()];
    const [from, to, step] = [Number(range[1]), Number(range[2]), Number(range[3] ?? 1)];
    if (from < 1 || to <= from || step < 1)
      throw new CliError(
        `--targets: '${item.trim()}' is not a range FROM-TO[:STEP] of unit counts, FROM ≥ 1 < TO`,
      );
    return Array.from({ length: Math.floor((to - from) / step) + 1 }, (_, i) => String(from + i * step));
  });
  if (items.length < 2 || items.some((t) => t === ''))
    throw new CliError(
      `--targets: '${list}' is not a list of two or more targets, such as 2,4,6,8, 0.1,0.2 or 2-8:2`,
    );
  return items.map((item) => {
    const value = Number(item);
    if (Number.isInteger(value) && value >= 1) return { units: value };
    if (value > 0 && value < 1) return { fraction: value };
    throw new CliError(`--targets: '${item}' is neither a number of units nor a fraction between 0 and 1`);
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
