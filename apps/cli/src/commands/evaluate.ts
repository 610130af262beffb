import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveDataFile, runtimeConfig } from '@evop/config';
import { readCorpus, readTask, TASKS, type TaskName, windowsFromDocuments } from '@evop/data';
import { InferencePool, OnnxEvaluator, scoreMultipleChoice } from '@evop/runtime';
import { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import { integer, type RawOptions, run } from '../command.ts';
import { loadModelSource } from '../model-source.ts';

/** `evop eval <model> --data … [--tasks …]`: perplexity under the evaluation protocol, and zero-shot accuracy. */
async function evaluate(positionals: string[], options: RawOptions): Promise<number> {
  const path = positionals[0];
  if (!path) throw new CliError('eval: give a model file (ONNX or llama2.c .bin)');
  const data = (options.data as string[] | undefined) ?? [];
  const tasks = ((options.tasks as string | undefined) ?? '').split(',').filter(Boolean);
  if (data.length === 0 && tasks.length === 0) throw new CliError('eval: give --data and/or --tasks');
  for (const t of tasks)
    if (!(t in TASKS))
      throw new CliError(`--tasks: unknown task '${t}'; use ${Object.keys(TASKS).join(', ')}`);
  for (const file of data) if (!existsSync(file)) throw new CliError(`--data: no such file '${file}'`);
  const seqLen = options['seq-len'] as number;
  const maxWindows = options.windows as number;
  // Lines for a person as each result comes, or one JSON document at the end for a script.
  const results: { perplexity: Record<string, unknown>[]; tasks: Record<string, unknown>[] } = {
    perplexity: [],
    tasks: [],
  };
  const say = (line: string) => {
    if (!options.json) process.stdout.write(`${line}\n`);
  };
  const work = mkdtempSync(join(tmpdir(), 'evop-eval-'));
  const source = loadModelSource(path, options.tokenizer as string | undefined, work);
  const pool = new InferencePool({ config: runtimeConfig() });
  try {
    const evaluator = await OnnxEvaluator.create({
      pool,
      model: source.model,
      layout: source.layout,
      granularity: 'layer',
      cacheDir: work,
    });
    for (const file of data) {
      const windows = windowsFromDocuments(readCorpus(file), source.tokenizer, seqLen, maxWindows);
      if (windows.count === 0) throw new CliError(`--data: '${file}' has fewer than ${seqLen} tokens`);
      const ppl = await evaluator.perplexity(windows);
      results.perplexity.push({ data: file, perplexity: ppl, windows: windows.count, seqLen });
      say(`${file}: perplexity ${ppl.toFixed(4)} (${windows.count} windows × ${seqLen} tokens)`);
    }
    for (const task of tasks as TaskName[]) {
      const items = readTask(task, resolveDataFile(TASKS[task]), { limit: options['task-limit'] as number });
      const r = await scoreMultipleChoice(evaluator, source.tokenizer, items);
      results.tasks.push({ task, ...r });
      say(
        `${task}: acc ${(100 * r.acc).toFixed(1)} ± ${(100 * r.accStderr).toFixed(1)}, acc_norm ${(100 * r.accNorm).toFixed(1)} ± ${(100 * r.accNormStderr).toFixed(1)} (${r.n} items)`,
      );
    }
    if (options.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    return 0;
  } finally {
    await pool.close();
  }
}

export function evalCommand(): Command {
  return new Command('eval')
    .summary("a model's perplexity on your text and its zero-shot accuracy")
    .argument('<model>', 'an ONNX export or a llama2.c checkpoint (.bin)')
    .option('--tokenizer <file>', "tokenizer.json, or llama2.c's tok*.bin (default: found beside the model)")
    .option('--data <file...>', 'text or JSONL corpora to measure perplexity on (repeat, or list several)')
    .option('--tasks <list>', `zero-shot tasks, comma-separated: ${Object.keys(TASKS).join(', ')}`)
    .option('--seq-len <tokens>', 'tokens per window', integer(2), 256)
    .option('--windows <n>', 'at most this many windows per corpus', integer(1), 256)
    .option('--task-limit <items>', 'items scored per zero-shot task', integer(1), 500)
    .option('--json', 'print the results as JSON')
    .action(run(async (args, options) => evaluate(args, options)));
}
