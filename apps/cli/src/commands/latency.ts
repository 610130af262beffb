import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runtimeConfig } from '@evop/config';
import { latencyLines, modelLatencyLines } from '@evop/pipeline/control';
import { compareLatency, hasCache, InferencePool, measureLatency, type TimedModel } from '@evop/runtime';
import { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import { decimal, integer, type RawOptions, run } from '../command.ts';
import { loadModelFile } from '../model-source.ts';

/**
 * `evop latency MODEL [PRUNED]`: one model's prefill and decode tokens/s, or dense against pruned in alternating
 * rounds with the speed ratio's interval and verdict; each phase until its interval is tight or the time cap.
 */
async function latency(paths: string[], options: RawOptions): Promise<number> {
  for (const path of paths) if (!existsSync(path)) throw new CliError(`latency: no such file '${path}'`);
  const config = runtimeConfig();
  const maxSeconds = (options['max-seconds'] as number | undefined) ?? config.latencyMaxSeconds;
  if (maxSeconds <= 0) throw new CliError('--max-seconds: expected a number > 0');
  const precision = options.precision as number;
  if (!(precision > 0)) throw new CliError('--precision: expected a fraction > 0 (0.02 is ±2 %)');
  const work = mkdtempSync(join(tmpdir(), 'evop-latency-'));
  // One evaluator thread times the models, with every core, or --threads of them, to onnxruntime.
  const threads = (options.threads as number | undefined) ?? config.intraOpThreads;
  const pool = new InferencePool({ config: { ...config, evalThreads: 1, intraOpThreads: threads } });
  try {
    const models: TimedModel[] = paths.map((path, i) => {
      const { model, layout } = loadModelFile(path, join(work, String(i)));
      return { path: model.path, layout };
    });
    const settings = {
      seqLen: options['seq-len'] as number,
      decodeTokens: options['decode-tokens'] as number,
      maxSeconds,
      precision,
    };
    const phases = models.every((m) => hasCache(m.layout)) ? 'prefill and decode' : 'prefill (no KV cache)';
    process.stderr.write(
      `evop: timing ${phases}, each until its 95 % interval is within ±${100 * precision} % or ${maxSeconds} s\n`,
    );
    const [dense, pruned] = models;
    if (pruned) {
      const result = await compareLatency(pool, dense!, pruned, settings);
      process.stdout.write(
        options.json
          ? `${JSON.stringify({ dense: paths[0], pruned: paths[1], ...result }, null, 2)}\n`
          : `dense: ${paths[0]}\npruned: ${paths[1]}\n${latencyLines(result).join('\n')}\n`,
      );
    } else {
      const result = await measureLatency(pool, dense!, settings);
      process.stdout.write(
        options.json
          ? `${JSON.stringify({ model: paths[0], ...result }, null, 2)}\n`
          : `model: ${paths[0]}\n${modelLatencyLines(result).join('\n')}\n`,
      );
    }
    return 0;
  } finally {
    await pool.close();
    rmSync(work, { recursive: true, force: true });
  }
}

export function latencyCommand(): Command {
  return new Command('latency')
    .summary("a model's prefill and decode speed, or a pruned model's against the dense one")
    .description(
      'Times prefill (one prompt of --seq-len tokens in one run, batch 1) and decode (--decode-tokens tokens one at ' +
        'a time through the KV cache; models without one: prefill only) in repeated rounds, and reports median ' +
        'tokens/s with a 95 % interval (distribution-free, from order statistics). With two models, they are timed ' +
        'in alternating rounds and the pruned / dense speed ratio gets the interval: "faster" or "slower" only when ' +
        'it excludes 1, else "inconclusive". Each phase repeats until its interval is within ±--precision of the ' +
        'median or --max-seconds have passed.',
    )
    .argument(
      '<model>',
      'an ONNX export or a llama2.c checkpoint (.bin): the dense model when PRUNED is given',
    )
    .argument('[pruned]', 'the pruned model (evop prune or evop apply output) to compare with MODEL')
    .option('--seq-len <tokens>', 'prompt length for prefill', integer(1), 128)
    .option('--decode-tokens <tokens>', 'tokens generated one at a time in a decode round', integer(1), 32)
    .option(
      '--max-seconds <seconds>',
      'time cap per phase: rounds stop here even if the interval is not yet tight (default: EVOP_LATENCY_MAX_SECONDS, else 20)',
      decimal,
    )
    .option(
      '--precision <fraction>',
      "the interval's half-width at which rounds stop, relative to the median",
      decimal,
      0.02,
    )
    .option(
      '--threads <n>',
      'onnxruntime intra-op threads (default: EVOP_INTRA_OP_THREADS, else the cores)',
      integer(1),
    )
    .option(
      '--json',
      'print the measurement as JSON (tokens/s and ratio as {median, low, high}, verdict, rounds)',
    )
    .action(run(async (args, options) => latency(args.filter(Boolean), options)));
}
