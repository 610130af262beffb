import type { DecoderLayout } from '@evop/onnx';
import { cacheCarry, decoderFeeds, hasCache } from './decoder-feeds.ts';
import type { InferencePool } from './inference-pool.ts';
import type { TimedStep } from './inference-thread.ts';

export interface Throughput {
  /** Tokens per second at the median and at the 90th-percentile (slow) round. */
  median: number;
  p90: number;
}

export interface LatencyResult {
  prefill: Throughput;
  /** Null for a model without a KV cache: it can only recompute the whole sequence for each token. */
  decode: Throughput | null;
  protocol: { seqLen: number; decodeTokens: number; warmup: number; repeats: number; batch: 1 };
}

export interface LatencyOptions {
  /** Prompt length for prefill (default 128). */
  seqLen?: number;
  /** Tokens generated one at a time through the KV cache (default 32). */
  decodeTokens?: number;
  warmup?: number;
  repeats?: number;
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function throughput(tokens: number, seconds: number[]): Throughput {
  const sorted = [...seconds].sort((a, b) => a - b);
  return { median: tokens / percentile(sorted, 0.5), p90: tokens / percentile(sorted, 0.9) };
}

/**
 * Prefill (batch 1, `seqLen` tokens in one run) and decode (one token per run through the KV cache, for models
 * that have one) speed of a plain decoder model, dense or pruned, after warm-up rounds; timed on one pool thread.
 */
export async function measureLatency(
  pool: InferencePool,
  modelPath: string,
  layout: DecoderLayout,
  options: LatencyOptions = {},
): Promise<LatencyResult> {
  const { seqLen = 128, decodeTokens = 32, warmup = 2, repeats = 10 } = options;
  const prompt = Array.from({ length: seqLen }, (_, t) => 3 + (t % Math.max(1, layout.vocabSize - 3)));
  const prefill: TimedStep[] = [{ feeds: decoderFeeds(layout, { ids: prompt, rows: 1, seqLen }) }];
  const prefillSeconds = await pool.time(modelPath, prefill, warmup, repeats);
  const decode = hasCache(layout) ? await timeDecode(pool, modelPath, layout, prompt, options) : null;
  return {
    prefill: throughput(seqLen, prefillSeconds),
    decode,
    protocol: { seqLen, decodeTokens, warmup, repeats, batch: 1 },
  };
}

async function timeDecode(
  pool: InferencePool,
  modelPath: string,
  layout: DecoderLayout,
  prompt: number[],
  options: LatencyOptions,
): Promise<Throughput> {
  const { decodeTokens = 32, warmup = 2, repeats = 10 } = options;
  const carry = cacheCarry(layout);
  const steps: TimedStep[] = [
    { feeds: decoderFeeds(layout, { ids: prompt.slice(0, 1), rows: 1, seqLen: 1 }) },
  ];
  for (let t = 1; t <= decodeTokens; t++)
    steps.push({
      feeds: decoderFeeds(layout, { ids: [prompt[t % prompt.length]!], rows: 1, seqLen: 1, pastLength: t }),
      carry,
    });
  // The first step only fills the cache from empty; it is not timed.
  steps[0]!.timed = false;
  return throughput(decodeTokens, await pool.time(modelPath, steps, warmup, repeats));
}
