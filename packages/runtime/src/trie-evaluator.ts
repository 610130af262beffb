import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tokensPerRun } from '@evop/config';
import type { TokenWindows } from '@evop/data';
import {
  type CutType,
  DataType,
  type DecoderLayout,
  derivableIn,
  GATE_INPUT,
  IGNORE_LABEL,
  INSTRUMENT_VERSION,
  instrument,
  LABELS_INPUT,
  type ModelProto,
  type Segment,
  segmentModel,
  splitAtUnits,
  unitsOf,
  withOutputs,
  writeModel,
} from '@evop/onnx';
import { decoderFeeds } from './decoder-feeds.ts';
import { assertFinite } from './finite-outputs.ts';
import type { InferencePool } from './inference-pool.ts';
import { checkLayout } from './layout-check.ts';
import { checkMasks, type MaskScorer, rowName, sumRows } from './mask-sums.ts';
import type { MaskEvaluation, OnnxEvaluatorOptions } from './onnx-evaluator.ts';
import { PrefixStates, type State } from './prefix-states.ts';
import { float32, int64, type WireFeeds, type WireTensor } from './wire-tensor.ts';

/** Bumped whenever the way segments are cut changes, so that segments written by an older evop are not reused. */
const SEGMENT_VERSION = 1;

/** Masks sharing a prefix share a node: children by the bits of the next segment's units, masks at the leaves. */
interface TrieNode {
  children: Map<string, TrieNode>;
  masks: number[];
}

/**
 * Scores masks along the trie of a batch: the search graph cut at the residual stream between units
 * (`splitAtUnits`), a segment run once for every prefix of kept and pruned units the batch's masks share, so that a
 * generation costs less than the sum of its pruned forwards. Each segment is the search graph's own nodes (its `If`s around the branches included), fed the same
 * values and cut where onnxruntime fuses nothing across (`splitAtUnits`, `segmentModel`), so the NLL is the search
 * graph's to the last bit (tested) where both pack a window with others: a window the gated graph ran alone, as the
 * last row of a batch, was seen to differ in its last bits from the same window run with others. Rows are windows,
 * packed into runs as OnnxEvaluator packs them; each run of windows walks the trie depth first. The states of the
 * prefixes it passes are kept in `EVOP_TRIE_CACHE_MB`, least recently used dropped first, and kept across batches:
 * a later child of a branch point, and a later batch's mask on the same windows, start from the deepest kept
 * prefix they share (a generation's offspring share long prefixes with the parents measured before them).
 */
export class TrieEvaluator implements MaskScorer {
  readonly units: number;

  /**
   * Unit segments run so far, on one run of windows each, with a unit kept and with all pruned (those cost a
   * residual sum): the work the trie and the kept states leave.
   */
  readonly unitRuns = { kept: 0, pruned: 0 };
  private readonly states: PrefixStates;

  private constructor(
    private readonly options: OnnxEvaluatorOptions,
    private readonly segments: (Segment & { path: string })[],
  ) {
    this.units = unitsOf(options.layout, options.granularity).length;
    this.states = new PrefixStates(options.pool.config.trieCacheBytes);
  }

  /** Cuts the search graph (once per model and granularity: the segments are kept in `cacheDir`). */
  static async create(options: OnnxEvaluatorOptions): Promise<TrieEvaluator> {
    const { model, layout, granularity, pool } = options;
    const dir = join(options.cacheDir, model.sha256);
    mkdirSync(dir, { recursive: true });
    await checkLayout(pool, model, layout, dir);
    const search = instrument(derivableIn(model, dir), layout, { granularity });
    const segments = splitAtUnits(search, layout, granularity);
    const paths = segments.map((_, i) =>
      join(dir, `segment-${granularity}-v${INSTRUMENT_VERSION}.${SEGMENT_VERSION}-${i}.onnx`),
    );
    if (!paths.every((path) => existsSync(path))) {
      const writes = [...new Set(segments.flatMap((s) => s.writes))];
      const types = await probeTypes(pool, search, layout, unitsOf(layout, granularity).length, writes, dir);
      segments.forEach((segment, i) => {
        writeModel(segmentModel(search, segment, types), paths[i]!, { externalData: 'reference' });
      });
    }
    pool.tune(paths, { keep: segments.length, spinning: false });
    return new TrieEvaluator(
      options,
      segments.map((segment, i) => ({ ...segment, path: paths[i]! })),
    );
  }

  /** Frees the memory of the segments' sessions and of the kept states; evaluating again loads them again. */
  unload(): Promise<void> {
    this.states.clear();
    return this.options.pool.unload(...this.segments.map((s) => s.path));
  }

  /** Per mask, the summed NLL over `windows` (and per cluster): OnnxEvaluator's numbers, bit for bit. */
  async evaluate(
    masks: readonly string[],
    windows: TokenWindows,
    options: { clusterOf?: ArrayLike<number>; signal?: AbortSignal } = {},
  ): Promise<MaskEvaluation[]> {
    checkMasks(masks, this.units);
    const root: TrieNode = { children: new Map(), masks: [] };
    masks.forEach((mask, m) => {
      let node = root;
      for (const segment of this.unitSegments) {
        const bits = segment.units.map((u) => mask[u]).join('');
        if (!node.children.has(bits)) node.children.set(bits, { children: new Map(), masks: [] });
        node = node.children.get(bits)!;
      }
      node.masks.push(m);
    });
    const pool = this.options.pool;
    const per = Math.max(
      1,
      Math.floor(tokensPerRun(pool.config, this.options.layout.vocabSize) / windows.seqLen),
    );
    const starts = Array.from({ length: Math.ceil(windows.count / per) }, (_, i) => i * per);
    const perRow = new Array<{ nll: number; count: number }>(masks.length * windows.count);
    const content = windows.sha256;
    // One run of windows per thread at a time.
    const lanes = Math.min(pool.threads, starts.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: lanes }, async () => {
        while (next < starts.length) {
          const start = starts[next++]!;
          const count = Math.min(per, windows.count - start);
          const run = { windows, key: `${content}:${start}:${count}`, start, rows: count };
          await new Walk(this, run, masks, root, this.states, options.signal).walk((m, r, nll, rowCount) => {
            perRow[m * windows.count + start + r] = { nll, count: rowCount };
          });
        }
      }),
    );
    return sumRows(masks, windows.count, perRow, options.clusterOf);
  }

  /** Tensors read by the segments after segment `index` (0: the embedding). */
  readAfter(index: number): ReadonlySet<string> {
    this.reads ??= this.segments.map((_, i) => new Set(this.segments.slice(i + 1).flatMap((s) => s.reads)));
    return this.reads[index]!;
  }
  private reads: Set<string>[] | undefined;

  /** The segments between the embedding and the head. */
  get unitSegments(): (Segment & { path: string })[] {
    return this.segments.slice(1, -1);
  }

  get embedding(): Segment & { path: string } {
    return this.segments[0]!;
  }

  get head(): Segment & { path: string } {
    return this.segments.at(-1)!;
  }

  get pool(): InferencePool {
    return this.options.pool;
  }

  get layout() {
    return this.options.layout;
  }
}

/** The windows a walk runs on: rows [start, start + rows) of `windows`, named by `key` wherever states are kept. */
interface WindowRun {
  windows: TokenWindows;
  key: string;
  start: number;
  rows: number;
}

/** One run of windows walking the trie depth first. */
class Walk {
  private readonly inputs: WireFeeds;
  /** The bits of each node from the root to the one being visited. */
  private readonly path: string[] = [];

  constructor(
    private readonly trie: TrieEvaluator,
    private readonly run: WindowRun,
    private readonly masks: readonly string[],
    private readonly root: TrieNode,
    private readonly states: PrefixStates,
    private readonly signal: AbortSignal | undefined,
  ) {
    const { windows, start, rows } = run;
    const T = windows.seqLen;
    const ids = windows.tokens.subarray(start * T, (start + rows) * T);
    const labels = new Array<number>(rows * T);
    for (let r = 0; r < rows; r++)
      for (let t = 0; t < T; t++) labels[r * T + t] = t + 1 < T ? ids[r * T + t + 1]! : IGNORE_LABEL;
    this.inputs = decoderFeeds(trie.layout, { ids, rows, seqLen: T });
    this.inputs[LABELS_INPUT] = int64(labels, [rows, T]);
  }

  async walk(record: (mask: number, row: number, nll: number, count: number) => void): Promise<void> {
    await this.visit(this.root, '', await this.embedded(), record);
  }

  private key(bits: string): string {
    return `${this.run.key}|${bits}`;
  }

  /** The state before the first unit, kept like any prefix's. */
  private async embedded(): Promise<State> {
    const kept = this.states.get(this.key(''));
    if (kept) return kept;
    const state = await this.segment(this.trie.embedding, {}, '');
    this.states.set(this.key(''), state);
    return state;
  }

  /**
   * `state` is the node's: handed to the first child that has to be computed, then dropped (a deep trie would
   * otherwise hold a state per level beyond the budget); later children start from the kept states.
   */
  private async visit(
    node: TrieNode,
    bits: string,
    state: State,
    record: (mask: number, row: number, nll: number, count: number) => void,
  ): Promise<void> {
    if (node.masks.length > 0) {
      const out = await this.segment(this.trie.head, state, bits);
      const nll = out.evop_nll!.data as Float32Array;
      const count = out.evop_count!.data as Float32Array;
      assertFinite(nll, 'logits', (r) => rowName(this.run.start + r, this.masks[node.masks[0]!]!));
      for (const m of node.masks) for (let r = 0; r < this.run.rows; r++) record(m, r, nll[r]!, count[r]!);
      return;
    }
    this.path.push(bits);
    this.states.pin(this.key(bits));
    try {
      let first: State | undefined = state;
      for (const [childBits, child] of node.children) {
        const prefix = bits + childBits;
        let reached = this.states.get(this.key(prefix));
        if (!reached) {
          const from = first ?? this.states.get(this.key(bits)) ?? (await this.recompute());
          reached = await this.advance(this.path.length - 1, from, prefix);
          // A leaf's state leads only to its head: not worth a place among the kept ones.
          if (child.masks.length === 0) this.states.set(this.key(prefix), reached);
        }
        first = undefined;
        await this.visit(child, prefix, reached, record);
      }
    } finally {
      this.states.unpin(this.key(bits));
      this.path.pop();
    }
  }

  /** The state of the deepest node on the path, from its nearest ancestor whose state is kept (or the start). */
  private async recompute(): Promise<State> {
    let from = this.path.length - 1;
    let state: State | undefined;
    for (; from > 0 && !state; from--) state = this.states.get(this.key(this.path[from]!));
    if (state) from++;
    else state = await this.embedded();
    for (let d = from; d < this.path.length - 1; d++) {
      state = await this.advance(d, state, this.path[d + 1]!);
      this.states.set(this.key(this.path[d + 1]!), state);
    }
    return state;
  }

  /** Runs the unit segment at `depth` on `state` with the units' bits ending `bits`; a pruned pass-through is free. */
  private async advance(depth: number, state: State, bits: string): Promise<State> {
    const segment = this.trie.unitSegments[depth]!;
    const own = bits.slice(bits.length - segment.units.length);
    const out =
      segment.passesStream && !own.includes('1')
        ? Object.fromEntries(segment.writes.map((name, j) => [name, state[segment.reads[j]!]!]))
        : await this.unitSegment(segment, state, bits, own.includes('1'));
    // What later segments read: the cut where the next starts, and values handed on further.
    const next: State = {};
    for (const [name, tensor] of Object.entries({ ...state, ...out }))
      if (this.trie.readAfter(depth + 1).has(name)) next[name] = tensor;
    return next;
  }

  private unitSegment(
    segment: Segment & { path: string },
    state: State,
    bits: string,
    kept: boolean,
  ): Promise<State> {
    this.trie.unitRuns[kept ? 'kept' : 'pruned']++;
    return this.segment(segment, state, bits);
  }

  /** One segment on this walk's windows; `bits`, the kept and pruned units so far, open and close its gates. */
  private segment(segment: Segment & { path: string }, state: State, bits: string): Promise<State> {
    const feeds: WireFeeds = {};
    for (const name of segment.inputs) {
      if (name === GATE_INPUT) {
        const U = this.trie.units;
        const row = Float32Array.from({ length: U }, (_, u) => (u < bits.length ? Number(bits[u]) : 1));
        const gate = new Float32Array(this.run.rows * U);
        for (let r = 0; r < this.run.rows; r++) gate.set(row, r * U);
        feeds[name] = float32(gate, [this.run.rows, U]);
      } else feeds[name] = cloneTensor(this.inputs[name]!);
    }
    // Copies: a run takes its feeds' buffers, and a state is kept to be read again.
    for (const name of segment.reads) feeds[name] = cloneTensor(state[name]!);
    const fetches = segment.writes.length > 0 ? segment.writes : ['evop_nll', 'evop_count'];
    return this.trie.pool.run(segment.path, feeds, fetches, this.signal);
  }
}

function cloneTensor(t: WireTensor): WireTensor {
  return { ...t, data: t.data.slice() } as WireTensor;
}

const ELEMENT_TYPES: Record<WireTensor['type'], number> = {
  float32: DataType.FLOAT,
  float16: DataType.FLOAT16,
  int64: DataType.INT64,
  int32: DataType.INT32,
  bool: DataType.BOOL,
};

/**
 * The element type and shape of each tensor handed between segments, read off the search graph run on two small
 * batches: a size that differs between them is symbolic (named for the run's rows or positions where it is them).
 */
async function probeTypes(
  pool: InferencePool,
  search: ModelProto,
  layout: DecoderLayout,
  U: number,
  names: string[],
  dir: string,
): Promise<Map<string, CutType>> {
  // Removed as soon as run: the pool's threads release sessions of files that are gone.
  const path = join(dir, `segment-probe-${process.pid}-${Date.now()}.onnx`);
  writeModel(withOutputs(search, names), path, { externalData: 'reference' });
  const shapes = [
    { rows: 1, seqLen: 3 },
    { rows: 2, seqLen: 5 },
  ];
  try {
    const runs: Record<string, WireTensor>[] = [];
    for (const { rows, seqLen } of shapes) {
      const ids = Array.from({ length: rows * seqLen }, (_, i) => 1 + (i % 7));
      const feeds = decoderFeeds(layout, { ids, rows, seqLen });
      feeds[GATE_INPUT] = float32(new Float32Array(rows * U).fill(1), [rows, U]);
      feeds[LABELS_INPUT] = int64(new Array(rows * seqLen).fill(IGNORE_LABEL), [rows, seqLen]);
      runs.push(await pool.run(path, feeds, names));
    }
    return new Map(
      names.map((name) => {
        const [a, b] = runs.map((r) => r[name]!);
        const shape = a!.dims.map((d, i) => (d === b!.dims[i] ? d : null));
        return [name, { elemType: ELEMENT_TYPES[a!.type], shape }];
      }),
    );
  } finally {
    rmSync(path, { force: true });
  }
}
