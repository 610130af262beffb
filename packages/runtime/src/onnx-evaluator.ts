import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tokensPerRun } from '@evop/config';
import type { TokenWindows } from '@evop/data';
import {
  DataType,
  type DecoderLayout,
  derivableIn,
  GATE_INPUT,
  type Granularity,
  IGNORE_LABEL,
  INSTRUMENT_VERSION,
  instrument,
  LABELS_INPUT,
  type LoadedModel,
  unitsOf,
  writeModel,
} from '@evop/onnx';
import { decoderFeeds } from './decoder-feeds.ts';
import { assertFinite } from './finite-outputs.ts';
import type { InferencePool } from './inference-pool.ts';
import { checkLayout } from './layout-check.ts';
import { checkMasks, type MaskScorer, maskNote, rowName, sumRows } from './mask-sums.ts';
import { TrieEvaluator } from './trie-evaluator.ts';
import { float32, int64 } from './wire-tensor.ts';

/** Summed NLL and predicted-token count; perplexity is exp(nllSum / count). */
export interface NllSum {
  nllSum: number;
  count: number;
}

/** One mask's result on a set of windows, with per-cluster sums when the windows carry cluster ids. */
export interface MaskEvaluation extends NllSum {
  mask: string;
  clusters?: NllSum[];
}

/** A sequence scored on the positions from `from` on: the log-likelihood of ids[from…] given ids[…from). */
export interface ScoredSequence {
  ids: readonly number[];
  from: number;
}

export interface OnnxEvaluatorOptions {
  pool: InferencePool;
  model: LoadedModel;
  layout: DecoderLayout;
  granularity: Granularity;
  /** Folder for the instrumented graphs, named by the model's sha256; created when missing. */
  cacheDir: string;
}

/**
 * Turns an instrumented model into numbers. Rows = masks × windows are packed into runs of at most
 * `maxBatchTokens` tokens (fewer for large vocabularies; grouped by mask) and spread over the pool's threads; per-row results are summed in
 * float64 in window order, so the numbers do not depend on the batching.
 */
export class OnnxEvaluator {
  readonly units: number;
  private constructor(
    private readonly options: OnnxEvaluatorOptions,
    private readonly searchPath: string,
    private readonly analysisPath: string,
  ) {
    this.units = unitsOf(options.layout, options.granularity).length;
  }

  /** Writes the search graph (once per model and granularity) and checks the layout before anything relies on it. */
  static async create(options: OnnxEvaluatorOptions): Promise<OnnxEvaluator> {
    const { model, layout, granularity } = options;
    const dir = join(options.cacheDir, model.sha256);
    mkdirSync(dir, { recursive: true });
    const path = (kind: string) => join(dir, `${kind}-${granularity}-v${INSTRUMENT_VERSION}.onnx`);
    if (!existsSync(path('search')))
      writeModel(instrument(derivableIn(model, dir), layout, { granularity }), path('search'), {
        externalData: 'reference',
      });
    await checkLayout(options.pool, model, layout, dir);
    const evaluator = new OnnxEvaluator(options, path('search'), path('analysis'));
    await options.pool.load(evaluator.searchPath);
    return evaluator;
  }

  /** Frees the memory of this evaluator's sessions; evaluating again loads them again. */
  async unload(): Promise<void> {
    await this.options.pool.unload(this.searchPath, this.analysisPath);
    if (this.trie) await (await this.trie).unload();
  }

  get layout(): DecoderLayout {
    return this.options.layout;
  }

  get allKept(): string {
    return '1'.repeat(this.units);
  }

  /** Per mask, the summed NLL over `windows` (and per cluster, when `clusterOf` gives each window's cluster). */
  async evaluate(
    masks: readonly string[],
    windows: TokenWindows,
    options: { clusterOf?: ArrayLike<number>; signal?: AbortSignal } = {},
  ): Promise<MaskEvaluation[]> {
    checkMasks(masks, this.units);
    const rows = masks.flatMap((_, m) => Array.from({ length: windows.count }, (_, w) => ({ m, w })));
    const perRow = await this.runRows(rows, windows, masks, options.signal);
    return sumRows(masks, windows.count, perRow, options.clusterOf);
  }

  /**
   * What the search scores masks with: this evaluator, or with `EVOP_EVALUATOR=trie` a TrieEvaluator on the same
   * model, pool and granularity (made on first use), which gives the same numbers.
   */
  forSearch(): Promise<MaskScorer> {
    // A float16 stream is computed in float32 between onnxruntime's CPU kernels (its casts between them are
    // dropped), but rounded to float16 where a trie segment hands it on: not the same numbers, so not the trie.
    const { pool, layout } = this.options;
    if (pool.config.evaluator !== 'trie' || layout.streamType !== DataType.FLOAT)
      return Promise.resolve(this);
    this.trie ??= TrieEvaluator.create(this.options);
    this.trie.catch(() => {
      this.trie = undefined;
    });
    return this.trie;
  }
  private trie: Promise<TrieEvaluator> | undefined;

  /** Perplexity of one mask (default: the dense model) on `windows`. */
  async perplexity(windows: TokenWindows, mask = this.allKept): Promise<number> {
    const [r] = await this.evaluate([mask], windows);
    return Math.exp(r!.nllSum / r!.count);
  }

  /** The final residual stream averaged over each window's positions: [count × hidden], for CCDS. */
  async pooledStates(windows: TokenWindows, signal?: AbortSignal): Promise<Float32Array> {
    const hidden = this.layout.hiddenSize;
    const out = new Float32Array(windows.count * hidden);
    await this.analyse(windows, 'evop_pooled', hidden, out, signal);
    return out;
  }

  /** Per unit, the mean over windows of the cosine between its input and output stream (ShortGPT). */
  async unitCosines(windows: TokenWindows, signal?: AbortSignal): Promise<number[]> {
    const U = this.units;
    const out = new Float32Array(windows.count * U);
    await this.analyse(windows, 'evop_unit_cos', U, out, signal);
    return Array.from({ length: U }, (_, u) => {
      let sum = 0;
      for (let w = 0; w < windows.count; w++) sum += out[w * U + u]!;
      return sum / windows.count;
    });
  }

  /**
   * Log-likelihood of each sequence's tail (ids[from…]) under `mask`, for zero-shot scoring. Sequences of
   * different lengths are sorted by length and right-padded per batch.
   */
  async logLikelihoods(
    sequences: readonly ScoredSequence[],
    mask = this.allKept,
    signal?: AbortSignal,
  ): Promise<number[]> {
    const order = sequences
      .map((_, i) => i)
      .sort((a, b) => sequences[a]!.ids.length - sequences[b]!.ids.length);
    const result = new Array<number>(sequences.length);
    const batches: number[][] = [];
    for (const i of order) {
      const batch = batches.at(-1);
      const longest = sequences[i]!.ids.length;
      if (batch && (batch.length + 1) * longest <= this.maxBatchTokens) batch.push(i);
      else batches.push([i]);
    }
    await Promise.all(
      batches.map(async (batch) => {
        const T = Math.max(...batch.map((i) => sequences[i]!.ids.length));
        const ids = new Array<number>(batch.length * T).fill(0);
        const labels = new Array<number>(batch.length * T).fill(IGNORE_LABEL);
        batch.forEach((i, r) => {
          const { ids: seq, from } = sequences[i]!;
          for (let t = 0; t < seq.length; t++) ids[r * T + t] = seq[t]!;
          for (let t = Math.max(from, 1); t < seq.length; t++) labels[r * T + t - 1] = seq[t]!;
        });
        const lengths = batch.map((i) => sequences[i]!.ids.length);
        const out = await this.runBatch(
          ids,
          labels,
          batch.length,
          T,
          batch.map(() => mask),
          lengths,
          signal,
        );
        assertFinite(out.nll, 'logits', (r) => `sequence ${batch[r]!}${maskNote(mask)}`);
        batch.forEach((i, r) => {
          result[i] = -out.nll[r]!;
        });
      }),
    );
    return result;
  }

  /** Tokens per run: EVOP_MAX_BATCH_TOKENS, fewer for a large vocabulary (`tokensPerRun`). */
  private get maxBatchTokens(): number {
    return tokensPerRun(this.options.pool.config, this.layout.vocabSize);
  }

  private rowsPerRun(seqLen: number): number {
    return Math.max(1, Math.floor(this.maxBatchTokens / seqLen));
  }

  private async runRows(
    rows: { m: number; w: number }[],
    windows: TokenWindows,
    masks: readonly string[],
    signal?: AbortSignal,
  ): Promise<{ nll: number; count: number }[]> {
    const T = windows.seqLen;
    const per = this.rowsPerRun(T);
    const results = new Array<{ nll: number; count: number }>(rows.length);
    const runs: Promise<void>[] = [];
    for (let start = 0; start < rows.length; start += per) {
      const chunk = rows.slice(start, start + per);
      const ids = new Array<number>(chunk.length * T);
      const labels = new Array<number>(chunk.length * T);
      chunk.forEach(({ w }, r) => {
        const window = windows.window(w);
        for (let t = 0; t < T; t++) {
          ids[r * T + t] = window[t]!;
          labels[r * T + t] = t + 1 < T ? window[t + 1]! : IGNORE_LABEL;
        }
      });
      runs.push(
        this.runBatch(
          ids,
          labels,
          chunk.length,
          T,
          chunk.map(({ m }) => masks[m]!),
          undefined,
          signal,
        ).then((out) => {
          assertFinite(out.nll, 'logits', (r) => rowName(chunk[r]!.w, masks[chunk[r]!.m]!));
          chunk.forEach((_, r) => {
            results[start + r] = { nll: out.nll[r]!, count: out.count[r]! };
          });
        }),
      );
    }
    await Promise.all(runs);
    return results;
  }

  private async runBatch(
    ids: number[],
    labels: number[],
    rows: number,
    seqLen: number,
    masks: string[],
    lengths: number[] | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ nll: Float32Array; count: Float32Array }> {
    const feeds = decoderFeeds(this.layout, { ids, rows, seqLen, ...(lengths ? { lengths } : {}) });
    feeds[GATE_INPUT] = float32(Float32Array.from(masks.join(''), Number), [rows, this.units]);
    feeds[LABELS_INPUT] = int64(labels, [rows, seqLen]);
    const out = await this.options.pool.run(this.searchPath, feeds, ['evop_nll', 'evop_count'], signal);
    return { nll: out.evop_nll!.data as Float32Array, count: out.evop_count!.data as Float32Array };
  }

  private async analyse(
    windows: TokenWindows,
    output: string,
    width: number,
    into: Float32Array,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    // Written on first use: most evaluators (a worker's, a pruned model's) never need this graph.
    if (!existsSync(this.analysisPath)) {
      const { model, layout, granularity } = this.options;
      writeModel(
        instrument(derivableIn(model, dirname(this.analysisPath)), layout, {
          granularity,
          pooled: true,
          unitCos: true,
        }),
        this.analysisPath,
        { externalData: 'reference' },
      );
    }
    const T = windows.seqLen;
    const per = this.rowsPerRun(T);
    const runs: Promise<void>[] = [];
    for (let start = 0; start < windows.count; start += per) {
      const count = Math.min(per, windows.count - start);
      const ids = windows.tokens.subarray(start * T, (start + count) * T);
      const feeds = decoderFeeds(this.layout, { ids, rows: count, seqLen: T });
      feeds[GATE_INPUT] = float32(new Float32Array(count * this.units).fill(1), [count, this.units]);
      feeds[LABELS_INPUT] = int64(new Array(count * T).fill(IGNORE_LABEL), [count, T]);
      runs.push(
        this.options.pool.run(this.analysisPath, feeds, [output], signal).then((out) => {
          const values = out[output]!.data as Float32Array;
          assertFinite(values, 'hidden states', (i) => rowName(start + Math.floor(i / width), this.allKept));
          into.set(values, start * width);
        }),
      );
    }
    await Promise.all(runs);
  }
}
