/**
 * One variant of the evaluator benchmark, run in its own process so that its peak RSS is its own:
 *   a  the evaluator: masks batched through the instrumented graph, NLL computed in the graph;
 *   t  the trie evaluator (a′): the same graph cut at the units, each prefix the masks share computed once;
 *   b  the naive way: one mask per run through a plainly gated graph (no skipping of closed units), full
 *      logits returned, NLL computed in TypeScript;
 *   c  the limit: a forward pass of each physically pruned model alone, on the same tokens.
 * on the protocol's masks, or (third argument) `random`: 32 random masks, `ga`: a real GA generation's
 * (generation.ts), `ga-screen`: the same on the windows the search screens them on, `ga-warm`: the same after the
 * batches the search evaluates before them (untimed, in order, each on its fidelity's windows), so that the trie
 * evaluator starts with the prefix states a search's own evaluator would hold. Prints one JSON line.
 */
import { join } from 'node:path';
import { runtimeConfig } from '@evop/config';
import { GATE_INPUT, instrument, LABELS_INPUT, pruneModel, writeModel } from '@evop/onnx';
import { prefixLength } from '@evop/pipeline';
import { decoderFeeds, InferencePool, OnnxEvaluator, TrieEvaluator } from '@evop/runtime';
import { gaHistory } from './generation.ts';
import { PROTOCOL, randomMasks, setup, workDir } from './setup.ts';

const variant = process.argv[2] as 'a' | 'b' | 'c' | 't';
const maskSet = process.argv[4] ?? 'protocol';
const { model, layout, windows: all, ...protocol } = setup(process.argv[3] === 'large-vocab');
const ga = maskSet.startsWith('ga') ? await gaHistory(model, layout) : undefined;
const masks = ga
  ? [...new Set(ga.generation.map((c) => c.mask))]
  : maskSet === 'random'
    ? randomMasks(32)
    : protocol.masks;
/** The first ⌈f·n⌉ windows, as the search's PrefixEvaluator measures fidelity f. */
const prefix = (fidelity: number) =>
  all.select(Array.from({ length: prefixLength(fidelity, all.count) }, (_, i) => i));
const windows = ga && maskSet !== 'ga' ? prefix(ga.generation[0]!.fidelity) : all;
const pool = new InferencePool({ config: runtimeConfig() });
const T = windows.seqLen;
const allIds = Array.from(windows.tokens);

const ROUNDS = 3;

/**
 * Seconds per mask: each round evaluates every mask once, after `prepare` (untimed); the median round counts.
 */
async function perMask(evaluateAll: () => Promise<void>, prepare = async () => {}): Promise<number> {
  await prepare();
  await evaluateAll(); // warm-up: sessions, arenas
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    await prepare();
    const start = performance.now();
    await evaluateAll();
    rounds.push((performance.now() - start) / 1000 / masks.length);
  }
  return rounds.sort((x, y) => x - y)[Math.floor(ROUNDS / 2)]!;
}

let secondsPerMask: number;
let nll: number[] = [];
/**
 * Unit segments the trie evaluator ran in the last timed round (with a unit kept, all pruned), and the sessions
 * that ran them (a chain of segments is one).
 */
let unitRuns: { kept: number; pruned: number; sessions: number } | undefined;
const options = { pool, model, layout, granularity: 'layer' as const, cacheDir: workDir };
if (variant === 'a') {
  const evaluator = await OnnxEvaluator.create(options);
  secondsPerMask = await perMask(async () => {
    nll = (await evaluator.evaluate(masks, windows)).map((r) => r.nllSum);
  });
} else if (variant === 't') {
  let evaluator = await TrieEvaluator.create(options);
  secondsPerMask = await perMask(
    async () => {
      const before = { ...evaluator.unitRuns, sessions: evaluator.sessionRuns };
      nll = (await evaluator.evaluate(masks, windows)).map((r) => r.nllSum);
      unitRuns = {
        kept: evaluator.unitRuns.kept - before.kept,
        pruned: evaluator.unitRuns.pruned - before.pruned,
        sessions: evaluator.sessionRuns - before.sessions,
      };
    },
    // Each round from an evaluator that kept no states of the round before (they would spare it everything).
    async () => {
      evaluator = await TrieEvaluator.create(options);
      if (maskSet === 'ga-warm')
        for (const batch of ga!.before)
          for (const fidelity of new Set(batch.map((c) => c.fidelity)))
            await evaluator.evaluate(
              batch.filter((c) => c.fidelity === fidelity).map((c) => c.mask),
              prefix(fidelity),
            );
    },
  );
} else if (variant === 'b') {
  const search = instrument(model.proto, layout, { granularity: 'layer', skipClosed: false });
  search.graph.output.push({ ...search.graph.output[0]!, name: layout.logits, type: null as never });
  const path = join(workDir, 'naive.onnx');
  writeModel(search, path);
  const run = async (mask: string) => {
    const feeds = decoderFeeds(layout, { ids: allIds, rows: windows.count, seqLen: T });
    feeds[GATE_INPUT] = {
      type: 'float32',
      data: Float32Array.from(mask.repeat(windows.count), Number),
      dims: [windows.count, 16],
    };
    feeds[LABELS_INPUT] = {
      type: 'int64',
      data: new BigInt64Array(windows.count * T),
      dims: [windows.count, T],
    };
    const logits = (await pool.run(path, feeds, [layout.logits]))[layout.logits]!.data as Float32Array;
    const V = layout.vocabSize;
    let sum = 0;
    for (let w = 0; w < windows.count; w++)
      for (let t = 0; t + 1 < T; t++) {
        const base = (w * T + t) * V;
        let max = Number.NEGATIVE_INFINITY;
        for (let v = 0; v < V; v++) max = Math.max(max, logits[base + v]!);
        let z = 0;
        for (let v = 0; v < V; v++) z += Math.exp(logits[base + v]! - max);
        sum += max + Math.log(z) - logits[base + allIds[w * T + t + 1]!]!;
      }
    return sum;
  };
  secondsPerMask = await perMask(async () => {
    nll = [];
    for (const mask of masks) nll.push(await run(mask));
  });
} else {
  const paths = masks.map((mask) => {
    const path = join(workDir, `pruned-${mask}.onnx`);
    writeModel(
      pruneModel(model.proto, layout, mask, { granularity: 'layer', sourceSha256: model.sha256 }),
      path,
    );
    return path;
  });
  const { discoverLayers, readModel } = await import('@evop/onnx');
  // Runs of the same size the evaluator uses (maxBatchTokens), so that only the graph differs.
  const rows = Math.max(1, Math.floor(pool.config.maxBatchTokens / T));
  const steps = paths.map((path) => {
    const prunedLayout = discoverLayers(readModel(path).proto);
    return Array.from({ length: Math.ceil(windows.count / rows) }, (_, r) => {
      const count = Math.min(rows, windows.count - r * rows);
      const ids = allIds.slice(r * rows * T, (r * rows + count) * T);
      return { feeds: decoderFeeds(prunedLayout, { ids, rows: count, seqLen: T }) };
    });
  });
  let total = 0;
  for (const [i, path] of paths.entries()) {
    const [rounds] = await pool.time([{ modelPath: path, steps: steps[i]! }], 1, ROUNDS);
    total += rounds!.sort((x, y) => x - y)[Math.floor(ROUNDS / 2)]!;
  }
  secondsPerMask = total / masks.length;
}
await pool.close();
console.log(
  JSON.stringify({
    variant,
    maskSet,
    masks: masks.length,
    rounds: ROUNDS,
    secondsPerMask,
    masksPerSecond: 1 / secondsPerMask,
    tokensPerSecond: (windows.count * PROTOCOL.seqLen) / secondsPerMask,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    windows: windows.count,
    unitRuns,
    nll,
  }),
);
