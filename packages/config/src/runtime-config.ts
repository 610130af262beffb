import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { parseEnv } from './parse-env.ts';

const positiveInt = z.coerce.number().int().positive();

const schema = z.object({
  EVOP_PROVIDER: z.enum(['auto', 'cuda', 'cpu']).default('auto'),
  EVOP_DEVICE_ID: z.coerce.number().int().min(0).default(0),
  EVOP_EVAL_THREADS: positiveInt.optional(),
  EVOP_INTRA_OP_THREADS: positiveInt.optional(),
  EVOP_GRAPH_OPTIMIZATION: z.enum(['disabled', 'basic', 'extended', 'all']).default('all'),
  EVOP_MAX_BATCH_TOKENS: positiveInt.default(4096),
  EVOP_PREPACK: z.enum(['0', '1']).default('0'),
  EVOP_LATENCY_MAX_SECONDS: z.coerce.number().positive().default(20),
  EVOP_EVALUATOR: z.enum(['gated', 'trie']).default('gated'),
  EVOP_TRIE_CACHE_MB: positiveInt.default(512),
});

/** How inference runs; documented in .env.example. */
export interface RuntimeConfig {
  /** `auto` tries CUDA and falls back to CPU with one warning; `cuda` refuses to start without it. */
  provider: 'auto' | 'cuda' | 'cpu';
  deviceId: number;
  /** Worker threads in the evaluator pool, each with its own session (default 1). */
  evalThreads: number;
  /** onnxruntime intra-op threads per session (default: cores / evalThreads). */
  intraOpThreads: number;
  graphOptimization: 'disabled' | 'basic' | 'extended' | 'all';
  /** Upper bound on rows × sequence length in one onnxruntime run. */
  maxBatchTokens: number;
  /**
   * onnxruntime's prepacked MatMul weights: about 6 % faster on CPU, but each session then holds its own packed
   * copy of the weights; off (default), every session of a model shares one memory-mapped copy.
   */
  prepack: boolean;
  /**
   * Seconds of timed rounds after which a latency phase (prefill, decode) stops although its interval is not yet
   * within ±2 % (`measureLatency`, `compareLatency`).
   */
  latencyMaxSeconds: number;
  /**
   * How the search scores a batch of masks: `gated`, each mask's rows through the search graph; `trie`, along the
   * trie of the masks, computing a prefix of kept and pruned units once for every mask that shares it (same numbers).
   */
  evaluator: 'gated' | 'trie';
  /** Bytes of hidden states the trie evaluator keeps for the trie's branch points at once. */
  trieCacheBytes: number;
}

/** Float32 logits one run may hold: 2048 tokens of a 32,000-token vocabulary, 512 of 128,000. */
const LOGITS_BYTES_PER_RUN = 256 * 2 ** 20;

/**
 * Tokens (rows × sequence length) in one onnxruntime run: EVOP_MAX_BATCH_TOKENS, and fewer for a large vocabulary,
 * whose [tokens, vocab] logits (and the loss's temporaries of that size) would dominate the memory of a run. The
 * evaluator packs its runs by it; the API estimates a task's memory by it.
 */
export function tokensPerRun(config: Pick<RuntimeConfig, 'maxBatchTokens'>, vocabSize: number): number {
  const byVocab = Math.floor(LOGITS_BYTES_PER_RUN / (4 * vocabSize));
  return Math.max(1, Math.min(config.maxBatchTokens, byVocab));
}

export function runtimeConfig(env: NodeJS.ProcessEnv = process.env): RuntimeConfig {
  const v = parseEnv(schema, env);
  const cores = availableParallelism();
  // One session per model and all cores to onnxruntime: sessions in other threads map the weights again (RSS counts
  // each mapping), and on a large model intra-op threads evaluate faster (bench/scale).
  const evalThreads = v.EVOP_EVAL_THREADS ?? 1;
  return {
    provider: v.EVOP_PROVIDER,
    deviceId: v.EVOP_DEVICE_ID,
    evalThreads,
    intraOpThreads: v.EVOP_INTRA_OP_THREADS ?? Math.max(1, Math.floor(cores / evalThreads)),
    graphOptimization: v.EVOP_GRAPH_OPTIMIZATION,
    maxBatchTokens: v.EVOP_MAX_BATCH_TOKENS,
    prepack: v.EVOP_PREPACK === '1',
    latencyMaxSeconds: v.EVOP_LATENCY_MAX_SECONDS,
    evaluator: v.EVOP_EVALUATOR,
    trieCacheBytes: v.EVOP_TRIE_CACHE_MB * 2 ** 20,
  };
}
