import type { DecoderLayout } from '@evop/onnx';
import { cacheCarry, decoderFeeds, hasCache } from './decoder-feeds.ts';
import type { InferencePool } from './inference-pool.ts';
import type { TimedStep } from './inference-thread.ts';
import { type Estimate, isTight, medianInterval, type Verdict, verdictOf } from './median-interval.ts';

/** A model file to time, with its layout (which says how to feed it and whether it has a KV cache). */
export interface TimedModel {
  path: string;
  layout: DecoderLayout;
}

export interface LatencyOptions {
  /** Prompt length for prefill (default 128). */
  seqLen?: number;
  /** Tokens generated one at a time through the KV cache (default 32). */
  decodeTokens?: number;
  /** Untimed rounds per model before each phase (default 2). */
  warmup?: number;
  /** A phase stops after this many seconds of timed rounds even if its interval is not yet tight (default 20). */
  maxSeconds?: number;
  /** A phase stops once its interval's half-width is at most this fraction of its median (default 0.02). */
  precision?: number;
  /** Checked between rounds: a phase stops with the signal's reason. */
  signal?: AbortSignal;
}

/** How a phase (prefill or decode) was measured: its rounds, their seconds, and whether the interval got tight. */
export interface PhaseRounds {
  rounds: number;
  seconds: number;
  /** True when the interval reached the precision; false when the time cap stopped the phase first. */
  converged: boolean;
}

/** One model's speed in a phase: tokens per second, the median round with its 95 % interval. */
export interface PhaseSpeed extends PhaseRounds {
  tokensPerSecond: Estimate;
}

/** Dense and pruned timed in alternating rounds: each one's tokens/s and the pruned / dense speed ratio. */
export interface PhaseComparison extends PhaseRounds {
  dense: Estimate;
  pruned: Estimate;
  /** Pruned over dense tokens per second, one sample per A B B A pair of rounds: > 1 is a speedup. */
  ratio: Estimate;
  verdict: Verdict;
}

export interface LatencyProtocol {
  seqLen: number;
  decodeTokens: number;
  warmup: number;
  maxSeconds: number;
  precision: number;
  confidence: number;
  batch: 1;
}

/** One model's prefill and decode speed (`measureLatency`). */
export interface LatencyResult {
  prefill: PhaseSpeed;
  /** Null for a model without a KV cache: it can only recompute the whole sequence for each token. */
  decode: PhaseSpeed | null;
  protocol: LatencyProtocol;
}

/** Dense against pruned (`compareLatency`). */
export interface LatencyComparison {
  prefill: PhaseComparison;
  /** Null unless both models have a KV cache. */
  decode: PhaseComparison | null;
  protocol: LatencyProtocol;
}

const CONFIDENCE = 0.95;

function protocolOf(options: LatencyOptions): LatencyProtocol {
  const { seqLen = 128, decodeTokens = 32, warmup = 2, maxSeconds = 20, precision = 0.02 } = options;
  return { seqLen, decodeTokens, warmup, maxSeconds, precision, confidence: CONFIDENCE, batch: 1 };
}

/** A phase's work on one model: the steps of one round and the tokens it produces. */
interface Phase {
  path: string;
  steps: TimedStep[];
  tokens: number;
}

function promptOf(layout: DecoderLayout, seqLen: number): number[] {
  return Array.from({ length: seqLen }, (_, t) => 3 + (t % Math.max(1, layout.vocabSize - 3)));
}

function prefillPhase(model: TimedModel, protocol: LatencyProtocol): Phase {
  const { seqLen } = protocol;
  const ids = promptOf(model.layout, seqLen);
  return {
    path: model.path,
    steps: [{ feeds: decoderFeeds(model.layout, { ids, rows: 1, seqLen }) }],
    tokens: seqLen,
  };
}

/** One token per run through the KV cache, `decodeTokens` of them after a first, untimed step fills the cache. */
function decodePhase(model: TimedModel, protocol: LatencyProtocol): Phase {
  const { layout } = model;
  const prompt = promptOf(layout, protocol.seqLen);
  const carry = cacheCarry(layout);
  const steps: TimedStep[] = [
    { feeds: decoderFeeds(layout, { ids: prompt.slice(0, 1), rows: 1, seqLen: 1 }), timed: false },
  ];
  for (let t = 1; t <= protocol.decodeTokens; t++)
    steps.push({
      feeds: decoderFeeds(layout, { ids: [prompt[t % prompt.length]!], rows: 1, seqLen: 1, pastLength: t }),
      carry,
    });
  return { path: model.path, steps, tokens: protocol.decodeTokens };
}

/**
 * Rounds per call to the pool: a pair, the models in one order in the first round and the reverse in the second
 * (A B B A), so that a place in the call that is slower (the first run after the thread wakes, say) weighs on
 * both alike.
 */
const ROUNDS_PER_CALL = 2;

/**
 * Each phase's seconds per round (one model, or dense and pruned in turn, so that a change in the machine's load
 * hits both alike), after warm-up, until the interval `estimateOf` gives is within ±`precision` of its median, or
 * `maxSeconds` of rounds have passed once it gives one (it gives none while the rounds are too few).
 */
async function timeRounds(
  pool: InferencePool,
  phases: Phase[],
  protocol: LatencyProtocol,
  estimateOf: (times: number[][]) => Estimate | null,
  signal?: AbortSignal,
): Promise<{ times: number[][]; estimate: Estimate } & PhaseRounds> {
  const runs = phases.map(({ path, steps }) => ({ modelPath: path, steps }));
  const times: number[][] = phases.map(() => []);
  let seconds = 0;
  for (let call = 0; ; call++) {
    signal?.throwIfAborted();
    const t = process.hrtime.bigint();
    const timed = await pool.time(runs, call === 0 ? protocol.warmup : 0, ROUNDS_PER_CALL);
    // The first call also loads the sessions and warms them up: only its timed rounds count towards the cap.
    seconds += call === 0 ? sum(timed.flat()) : Number(process.hrtime.bigint() - t) / 1e9;
    for (const [i, round] of timed.entries()) times[i]!.push(...round);
    const estimate = estimateOf(times);
    if (!estimate) continue;
    const converged = isTight(estimate, protocol.precision);
    if (converged || seconds >= protocol.maxSeconds)
      return { times, estimate, rounds: times[0]!.length, seconds, converged };
  }
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** Tokens per second: the median round with its 95 % interval, null while the rounds are too few for one. */
const rateOf = (phase: Phase, times: number[]) =>
  medianInterval(
    times.map((t) => phase.tokens / t),
    CONFIDENCE,
  );

/**
 * Prefill (batch 1, `seqLen` tokens in one run) and decode (one token per run through the KV cache, for a model
 * that has one) speed of one model, each as the median tokens/s of repeated rounds with a distribution-free 95 %
 * interval; rounds repeat until the interval is within ±`precision` or `maxSeconds` pass. Timed on one pool thread.
 */
export async function measureLatency(
  pool: InferencePool,
  model: TimedModel,
  options: LatencyOptions = {},
): Promise<LatencyResult> {
  const protocol = protocolOf(options);
  const measure = async (phase: Phase): Promise<PhaseSpeed> => {
    const rate = ([times]: number[][]) => rateOf(phase, times!);
    const { estimate, rounds, seconds, converged } = await timeRounds(
      pool,
      [phase],
      protocol,
      rate,
      options.signal,
    );
    return { tokensPerSecond: estimate, rounds, seconds, converged };
  };
  return {
    prefill: await measure(prefillPhase(model, protocol)),
    decode: hasCache(model.layout) ? await measure(decodePhase(model, protocol)) : null,
    protocol,
  };
}

/**
 * A model's seconds per A B B A call (its two rounds summed): its first place in the call is slower than its
 * second (the thread wakes), so a single round's time depends on where in the call it ran; a call's sum does not.
 */
function perCall(times: number[]): number[] {
  const sums: number[] = [];
  for (let r = 0; r + 1 < times.length; r += ROUNDS_PER_CALL) sums.push(times[r]! + times[r + 1]!);
  return sums;
}

/** Pruned over dense tokens/s of each call (dense over pruned seconds): neighbours in time, each model once in each place. */
function ratioOf([dense, pruned]: number[][]): Estimate | null {
  const d = perCall(dense!);
  const p = perCall(pruned!);
  return medianInterval(
    d.map((seconds, i) => seconds / p[i]!),
    CONFIDENCE,
  );
}

/**
 * Dense against pruned, prefill and decode (decode when both have a KV cache): the two models are timed in
 * alternating rounds, and the rounds go on until the 95 % interval of the median speed ratio is within
 * ±`precision` of it or `maxSeconds` pass. The verdict is `faster` or `slower` only when that interval excludes 1.
 */
export async function compareLatency(
  pool: InferencePool,
  dense: TimedModel,
  pruned: TimedModel,
  options: LatencyOptions = {},
): Promise<LatencyComparison> {
  const protocol = protocolOf(options);
  const compare = async (phaseOf: (m: TimedModel, p: LatencyProtocol) => Phase): Promise<PhaseComparison> => {
    const phases = [phaseOf(dense, protocol), phaseOf(pruned, protocol)];
    const {
      times,
      estimate: ratio,
      ...rounds
    } = await timeRounds(pool, phases, protocol, ratioOf, options.signal);
    // Each model's speed per call, as the ratio takes it, so that the two medians and the ratio tell one story.
    const perCallRate = (phase: Phase, t: number[]) =>
      medianInterval(
        perCall(t).map((seconds) => (ROUNDS_PER_CALL * phase.tokens) / seconds),
        CONFIDENCE,
      )!;
    return {
      dense: perCallRate(phases[0]!, times[0]!),
      pruned: perCallRate(phases[1]!, times[1]!),
      ratio,
      verdict: verdictOf(ratio),
      ...rounds,
    };
  };
  return {
    prefill: await compare(prefillPhase),
    decode: hasCache(dense.layout) && hasCache(pruned.layout) ? await compare(decodePhase) : null,
    protocol,
  };
}
