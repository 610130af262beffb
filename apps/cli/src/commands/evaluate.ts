import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveDataFile, runtimeConfig } from '@evop/config';
import { readCorpus, readTask, TASKS, type TaskName, windowsFromDocuments } from '@evop/data';
import { InferencePool, OnnxEvaluator, scoreMultipleChoice } from '@evop/runtime';
import { CliError } from '../cli-error.ts';
import { loadModelSource } from '../model-source.ts';
import type { RawOptions } from '../prune-spec.ts';

/** `evop eval <model> --data … [--tasks …]`: perplexity under the evaluation protocol, and zero-shot accuracy. */
export async function evaluate(positionals: string[], options: RawOptions): Promise<number> {
  const path = positionals[0];
  if (!path) throw new CliError('eval: give a model file (ONNX or llama2.c .bin)');
  const data = (options.data as string[] | undefined) ?? [];
  const tasks = ((options.tasks as string | undefined) ?? '').split(',').filter(Boolean);
  if (data.length === 0 && tasks.length === 0) throw new CliError('eval: give --data and/or --tasks');
  for (const t of tasks)
    if (!(t in TASKS))
      throw new CliError(`--tasks: unknown task '${t}'; use ${Object.keys(TASKS).join(', ')}`);
  for (const file of data) if (!existsSync(file)) throw new CliError(`--data: no such file '${file}'`);
  const seqLen = Number(options['seq-len'] ?? 256);
  const maxWindows = Number(options.windows ?? 256);
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
      process.stdout.write(
        `${file}: perplexity ${ppl.toFixed(4)} (${windows.count} windows × ${seqLen} tokens)\n`,
      );
    }
    for (const task of tasks as TaskName[]) {
      const items = readTask(task, resolveDataFile(TASKS[task]), {
        limit: Number(options['task-limit'] ?? 500),
      });
      const r = await scoreMultipleChoice(evaluator, source.tokenizer, items);
      process.stdout.write(
        `${task}: acc ${(100 * r.acc).toFixed(1)} ± ${(100 * r.accStderr).toFixed(1)}, acc_norm ${(100 * r.accNorm).toFixed(1)} ± ${(100 * r.accNormStderr).toFixed(1)} (${r.n} items)\n`,
      );
    }
    return 0;
  } finally {
    await pool.close();
  }
}
