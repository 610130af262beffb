import { type RuntimeConfig, type ServiceConfig, tokensPerRun } from '@evop/config';
import { DataType, type DecoderLayout } from '@evop/onnx';
import { PipelineError } from './pipeline-error.ts';
import type { SearchSpec } from './search-spec.ts';

/** A worker process before any model: Node.js, onnxruntime and their arenas (measured: ~250 MiB). */
const BASE_BYTES = 256 * 2 ** 20;
/** The head size of most LLMs (GPT-2, Llama 3.2 1B/3B; Llama 2 7B has 128): assumed where the export does not say. */
const ASSUMED_HEAD_DIM = 64;
const GIB = 2 ** 30;

type Layout = Pick<
  DecoderLayout,
  'hiddenSize' | 'vocabSize' | 'totalParams' | 'streamType' | 'inputs' | 'blocks'
>;

/** Attention heads: hidden size over the head size a KV-cache input shows ([batch, kv heads, past, head size]). */
function headsOf(layout: Layout): number {
  const past = layout.blocks.flatMap((b) => b.pastInputs)[0];
  const headDim = layout.inputs.find((i) => i.name === past)?.shape.at(-1);
  const dim = typeof headDim === 'number' && headDim > 0 ? headDim : ASSUMED_HEAD_DIM;
  return Math.max(1, Math.round(layout.hiddenSize / dim));
}

/**
 * The peak memory of one worker task (fitness: `masksPerTask` masks × the calibration windows; export: the held-out
 * windows) in bytes, from the layout and the spec, before it runs. A task's rows are packed into onnxruntime runs
 * of B = ⌊tokensPerRun / seqLen⌋ rows (at least one, at most the task's rows), up to EVOP_EVAL_THREADS of them at
 * once; a run of B × T tokens holds, in float32:
 * - attention: the scores and their softmax, B·heads·T² each, and the causal mask and its comparisons, B·T² a few
 *   times over: 4·B·T²·(2·heads + 10) bytes — what grows with seqLen²;
 * - the stream and an MLP's intermediates, ~16 × B·T·hidden, and the logits with the loss's temporaries, 3 × B·T·vocab.
 * Plus the weights (mapped once, shared by the pool's sessions) and the process itself. The constants were fitted
 * to the peak RSS of `evop eval` (EVOP_EVAL_THREADS=1) on stories260K (8 heads, from its KV cache) and hf-zoo's
 * llama (no KV cache: 1 head assumed, 4 real) at seqLen 512…4096, one window and as many as fill a run: the
 * estimate was within −15 … +30 % of each. Heads come from a KV-cache input's head size, else a head size of 64.
 */
export function taskMemoryBytes(
  layout: Layout,
  spec: Pick<SearchSpec, 'seqLen' | 'calibration' | 'heldOut'>,
  settings: { masksPerTask: number; runtime: Pick<RuntimeConfig, 'maxBatchTokens' | 'evalThreads'> },
): number {
  const T = spec.seqLen;
  const rows = Math.max(settings.masksPerTask * spec.calibration, spec.heldOut);
  const B = Math.max(1, Math.min(rows, Math.floor(tokensPerRun(settings.runtime, layout.vocabSize) / T)));
  const run = 4 * B * T * (T * (2 * headsOf(layout) + 10) + 16 * layout.hiddenSize + 3 * layout.vocabSize);
  const concurrent = Math.min(settings.runtime.evalThreads, Math.ceil(rows / B));
  const weights = layout.totalParams * (layout.streamType === DataType.FLOAT16 ? 2 : 4);
  return BASE_BYTES + weights + concurrent * run;
}

/** Refuses a spec whose tasks would not fit a worker's memory (EVOP_WORKER_MEMORY_BYTES), naming seqLen. */
export function checkTaskMemory(
  layout: Layout,
  spec: SearchSpec,
  config: Pick<ServiceConfig, 'masksPerTask' | 'workerMemoryBytes'>,
  runtime: Pick<RuntimeConfig, 'maxBatchTokens' | 'evalThreads'>,
): void {
  const need = taskMemoryBytes(layout, spec, { masksPerTask: config.masksPerTask, runtime });
  if (need > config.workerMemoryBytes)
    throw new PipelineError(
      'seqLen',
      `a task would need ~${(need / GIB).toFixed(1)} GiB of worker memory ` +
        `(limit ${(config.workerMemoryBytes / GIB).toFixed(1)} GiB, EVOP_WORKER_MEMORY_BYTES)`,
    );
}
