import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Interrupted, prunedText, reportTable } from '@evop/pipeline';
import { readJson, writeJson } from '../atomic-json.ts';
import { CliError } from '../cli-error.ts';
import { Progress } from '../progress.ts';
import { runPrune } from '../prune-run.ts';
import { type PruneSpec, pruneSpec, type RawOptions } from '../prune-spec.ts';

/** The run finished and wrote its model, mask and report, but a later stage failed. */
const EXIT_STAGES_FAILED = 3;

/** `evop prune …` or `evop prune --resume DIR`: returns the exit code. */
export async function prune(options: RawOptions): Promise<number> {
  let spec: PruneSpec;
  let out: string;
  if (typeof options.resume === 'string') {
    out = resolve(options.resume);
    const saved = readJson<PruneSpec>(join(out, 'spec.json'));
    if (!saved) throw new CliError(`--resume: '${out}' holds no evop run (no spec.json)`);
    spec = saved;
  } else {
    spec = pruneSpec(options);
    out = resolve((options.out as string | undefined) ?? 'evop-output');
    if (existsSync(join(out, 'spec.json')))
      throw new CliError(
        `--out: '${out}' already holds a run; continue it with --resume ${out}, or choose another folder`,
      );
    for (const file of spec.data) if (!existsSync(file)) throw new CliError(`--data: no such file '${file}'`);
    writeJson(join(out, 'spec.json'), spec);
  }
  if (options.threads !== undefined) process.env.EVOP_EVAL_THREADS = String(options.threads);

  const controller = new AbortController();
  const progress = new Progress(process.stderr, options.quiet === true);
  const stop = () => {
    progress.stop();
    process.stderr.write('evop: stopping after the current evaluations…\n');
    controller.abort();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const report = await runPrune(spec, out, progress, controller.signal);
    process.stdout.write(
      `${reportTable(report)}\n\npruned: ${prunedText(report)}\n` +
        `pruned model: ${join(out, 'model.onnx')}\nreport: ${join(out, 'report.html')}\n`,
    );
    if (report.failed.length === 0) return 0;
    for (const { stage, error } of report.failed)
      process.stderr.write(`evop: stage '${stage}' failed: ${error}\n`);
    process.stderr.write(
      `evop: the model, mask and report are written; complete with: evop prune --resume ${out}\n`,
    );
    return EXIT_STAGES_FAILED;
  } catch (err) {
    if (err instanceof Interrupted || controller.signal.aborted) {
      process.stderr.write(`evop: stopped; continue with: evop prune --resume ${out}\n`);
      return 130;
    }
    throw err;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
