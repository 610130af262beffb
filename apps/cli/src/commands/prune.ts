import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { OBJECTIVES, STRATEGIES } from '@evop/core';
import { TASKS } from '@evop/data';
import {
  SEARCH_SPEC_DEFAULTS as DEFAULTS,
  frontText,
  Interrupted,
  prunedText,
  reportTable,
} from '@evop/pipeline';
import { Command, Option } from 'commander';
import { readJson, writeJson } from '../atomic-json.ts';
import { CliError } from '../cli-error.ts';
import { decimal, integer, type RawOptions, run } from '../command.ts';
import { Progress } from '../progress.ts';
import { runPrune } from '../prune-run.ts';
import { type PruneSpec, pruneSpec } from '../prune-spec.ts';

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
    const files = {
      model: join(out, 'model.onnx'),
      mask: join(out, 'mask.json'),
      report: join(out, 'report.html'),
      reportJson: join(out, 'report.json'),
    };
    const front = (report.front ?? []).map((p) => ({ ...p, model: join(out, p.model) }));
    if (options.json) {
      const { result, table, latency, failed } = report;
      process.stdout.write(`${JSON.stringify({ files, result, table, latency, front, failed }, null, 2)}\n`);
    } else
      process.stdout.write(
        `${reportTable(report)}\n\npruned: ${prunedText(report)}\n` +
          (front.length ? `\nquality–speed front:\n${frontText(report)}\n\n` : '') +
          `pruned model: ${files.model}\nreport: ${files.report}\n`,
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

/**
 * The flags that set a search spec, shared by `evop prune` and `evop remote submit`; their defaults are the spec
 * schema's, so that help shows what a run gets.
 */
export function specOptions(): Option[] {
  return [
    new Option('--remove <units>', 'units to prune (give this, --sparsity or --targets)').argParser(
      integer(1),
    ),
    new Option('--sparsity <fraction>', 'fraction of the units to prune, between 0 and 1').argParser(decimal),
    new Option(
      '--targets <list>',
      'a quality–speed front: targets as units or fractions, comma-separated (2,4,6,8), or a range of units ' +
        '(2-8:2); the first is the run’s own ' +
        'target (model.onnx, compared with the peers), each other one is searched too, seeded from its neighbours, ' +
        'and written to front/<units>-units/',
    ),
    new Option('--granularity <unit>', 'what a unit is: a whole decoder layer, or its attention / MLP block')
      .choices(['layer', 'sublayer'])
      .default(DEFAULTS.granularity),
    new Option('--strategy <name>', 'search method: evop, or a peer method for comparison')
      .choices(STRATEGIES)
      .default(DEFAULTS.strategy),
    new Option('--objective <name>', 'fitness over the calibration clusters')
      .choices(OBJECTIVES)
      .default(DEFAULTS.objective),
    new Option('--seed <n>', 'random seed (a run is repeatable from its seed)')
      .argParser(integer(0))
      .default(DEFAULTS.seed),
    new Option('--budget <evaluations>', 'search budget in full-evaluation equivalents')
      .argParser(integer(1))
      .default(DEFAULTS.budget),
    new Option('--calibration <windows>', 'calibration windows the search scores masks on')
      .argParser(integer(1))
      .default(DEFAULTS.calibration),
    new Option('--held-out <windows>', 'held-out windows the results are reported on (never searched on)')
      .argParser(integer(1))
      .default(DEFAULTS.heldOut),
    new Option('--clusters <k>', 'CCDS clusters the calibration windows are drawn from')
      .argParser(integer(1))
      .default(DEFAULTS.clusters),
    new Option('--sampling <how>', 'how calibration windows are chosen from the pool')
      .choices(['ccds', 'random'])
      .default(DEFAULTS.sampling),
    new Option('--seq-len <tokens>', 'tokens per window').argParser(integer(2)).default(DEFAULTS.seqLen),
    new Option(
      '--tasks <list>',
      `zero-shot tasks to score, comma-separated: ${Object.keys(TASKS).join(', ')}`,
    ),
    new Option('--task-limit <items>', 'items scored per zero-shot task')
      .argParser(integer(1))
      .default(DEFAULTS.taskLimit),
    new Option('--baselines', 'also run the peer methods on the same windows and evaluator, for comparison'),
    new Option(
      '--balance <split>',
      'attn-mlp: remove as many attention as MLP blocks (as EvoPress; sublayer only)',
    )
      .choices(['none', 'attn-mlp'])
      .default(DEFAULTS.balance),
  ];
}

export function pruneCommand(): Command {
  const command = new Command('prune')
    .summary('search which units to remove, and write the pruned model and its report')
    .description(
      'Searches which decoder layers (or attention / MLP blocks) of a model to remove, on calibration windows drawn ' +
        'from your corpus, then writes the physically pruned model, its mask and a report to --out. ' +
        'Stopped (Ctrl-C) or with a failed stage, `evop prune --resume DIR` continues it.',
    )
    .option(
      '--model <file>',
      'the model: an ONNX export (external data beside it) or a llama2.c checkpoint (.bin)',
    )
    .option('--tokenizer <file>', "tokenizer.json, or llama2.c's tok*.bin (default: found beside the model)")
    .option('--data <file...>', 'text or JSONL corpora to calibrate on (repeat, or list several)')
    .option(
      '--eval-data <file...>',
      'corpora never calibrated on: held-out perplexity on each is reported too (out of domain)',
    );
  for (const option of specOptions()) command.addOption(option);
  return command
    .option('--out <dir>', 'folder the run writes (created)', 'evop-output')
    .option('--resume <dir>', 'continue a stopped run, or complete the stages that failed, from its folder')
    .option('--threads <n>', 'evaluation threads (default: EVOP_EVAL_THREADS, else the cores)', integer(1))
    .option('--quiet', 'no progress bar')
    .option('--json', "print the report's comparison table and output paths as JSON")
    .addHelpText(
      'after',
      `
Examples:
  evop prune --model model.onnx --data corpus.txt --sparsity 0.25 --out my-run
  evop prune --model model.onnx --data corpus.txt --remove 8 --granularity sublayer --baselines --tasks piqa
  evop prune --model model.onnx --data corpus.txt --targets 4,2,6,8 --out my-front
  evop prune --resume my-run

--out then holds model.onnx (the pruned model), mask.json (for evop apply), report.json and report.html; with
--targets also front/<units>-units/model.onnx and mask.json for each other target.`,
    )
    .action(run(async (_args, options) => prune(options)));
}
