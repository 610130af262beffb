import type { DecoderLayout } from '@evop/onnx';
import { cacheCarry, decoderFeeds } from './decoder-feeds.ts';
import type { InferencePool } from './inference-pool.ts';
import type { TimedStep } from './inference-thread.ts';

export interface Throughput {
  /** Tokens per second at the median and at the 90th-percentile (slow) round. */
  median: number;
  p90: number;
}

export interface LatencyResult {
  prefill: Throughput;
  decode: Throughput;
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
 * Prefill (batch 1, `seqLen` tokens in one run) and decode (one token per run through the KV cache) speed of a
 * plain decoder model, dense or pruned, after warm-up rounds; timed on one pool thread.
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
  const carry = cacheCarry(layout);
  const decode: TimedStep[] = [
    { feeds: decoderFeeds(layout, { ids: prompt.slice(0, 1), rows: 1, seqLen: 1 }) },
  ];
  for (let t = 1; t <= decodeTokens; t++)
    decode.push({
      feeds: decoderFeeds(layout, { ids: [prompt[t % seqLen]!], rows: 1, seqLen: 1, pastLength: t }),
      carry,
    });
  // The first decode step only fills the cache from empty; it is not timed.
  decode[0]!.timed = false;
  const prefillSeconds = await pool.time(modelPath, prefill, warmup, repeats);
  const decodeSeconds = await pool.time(modelPath, decode, warmup, repeats);
  return {
    prefill: throughput(seqLen, prefillSeconds),
    decode: throughput(decodeTokens, decodeSeconds),
    protocol: { seqLen, decodeTokens, warmup, repeats, batch: 1 },
  };
}
