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
  joinSegments,
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
const SEGMENT_VERSION = 2;

/**
 * Lengths of the aligned chains of unit segments also cut as one model each (a chain of `n` starts at a multiple
 * of `n`), longest first. A run costs more than the same units inside a longer graph, so a stretch of the trie with
 * no branch point runs in as few sessions as the aligned chains allow; longer ones would add sessions (memory) for
 * stretches that a batch's branch points seldom leave.
 */
const CHAIN_LENGTHS = [8, 4, 2];

/** Masks sharing a prefix share a node: children by the bits of the next segment's units, masks at the leaves. */
interface TrieNode {
  children: Map<string, TrieNode>;
  masks: number[];
}

/**
 * Scores masks along the trie of a batch: the search graph cut at the residual stream between units
 * (`splitAtUnits`), a segment run once for every prefix of kept and pruned units the batch's masks share, so that a
 * generation costs less than the sum of its pruned forwards. A stretch of the trie with no branch point runs in
 * the fewest aligned chains of segments (`CHAIN_LENGTHS`, each cut as one model by `joinSegments`): a run costs more
 * than the same units inside a longer graph. Each segment is the search graph's own nodes (its `If`s around the
 * branches included), fed the same values and cut where onnxruntime fuses nothing across (`splitAtUnits`,
 * `segmentModel`), so the NLL is the search graph's to the last bit (tested) where both pack a window with others:
 * a window the gated graph ran alone, as the last row of a batch, was seen to differ in its last bits from the same
 * window run with others. Rows are windows, packed into runs as OnnxEvaluator packs them; each run of windows walks
 * the trie depth first. The states it computes (at branch points and where chains end) are kept in
 * `EVOP_TRIE_CACHE_MB`, least recently used dropped first, and kept across batches: a later child of a branch point,
 * and a later batch's mask on the same windows, start from the deepest kept prefix they share (a generation's
 * offspring share long prefixes with the parents measured before them).
 */
export class TrieEvaluator implements MaskScorer {
  readonly units: number;

  /**
   * Unit segments run so far, on one run of windows each, with a unit kept and with all pruned (those cost a
   * residual sum): the work the trie and the kept states leave.
   */
  readonly unitRuns = { kept: 0, pruned: 0 };
  /** Sessions run for unit segments: one per chain or lone segment (fewer than `unitRuns` where chains ran). */
  sessionRuns = 0;
  private readonly states: PrefixStates;

  private constructor(
    private readonly options: OnnxEvaluatorOptions,
    private readonly segments: (Segment & { path: string })[],
    /** Chains of unit segments as one model, by `start+length` (unit segments counted from 0). */
    private readonly chains: ReadonlyMap<string, Segment & { path: string }>,
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
    const name = (part: string | number) =>
      join(dir, `segment-${granularity}-v${INSTRUMENT_VERSION}.${SEGMENT_VERSION}-${part}.onnx`);
    const units = segments.slice(1, -1);
    const chains = CHAIN_LENGTHS.flatMap((length) =>
      Array.from({ length: Math.floor(units.length / length) }, (_, k) => {
        const start = k * length;
        const segment = joinSegments(
          units.slice(start, start + length),
          readsAfter(segments, start + length),
        );
        return { key: `${start}+${length}`, ...segment, path: name(`chain${start}+${length}`) };
      }),
    );
    const all = [...segments.map((segment, i) => ({ ...segment, path: name(i) })), ...chains];
    if (!all.every(({ path }) => existsSync(path))) {
      const writes = [...new Set(segments.flatMap((s) => s.writes))];
      const types = await probeTypes(pool, search, layout, unitsOf(layout, granularity).length, writes, dir);
      for (const { path, ...segment } of all)
        writeModel(segmentModel(search, segment, types), path, { externalData: 'reference' });
    }
    pool.tune(
      all.map((s) => s.path),
      { keep: all.length, spinning: false },
    );
    return new TrieEvaluator(
      options,
      all.slice(0, segments.length),
      new Map(chains.map((chain) => [chain.key, chain])),
    );
  }

  /** Frees the memory of the segments' sessions and of the kept states; evaluating again loads them again. */
  unload(): Promise<void> {
    this.states.clear();
    return this.options.pool.unload(...[...this.segments, ...this.chains.values()].map((s) => s.path));
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
    this.reads ??= this.segments.map((_, i) => readsAfter(this.segments, i));
    return this.reads[index]!;
  }
  private reads: Set<string>[] | undefined;

  /** Unit segments [start, start + length) as one model: a chain's, or the one segment's. */
  stretch(start: number, length: number): (Segment & { path: string }) | undefined {
    return length === 1 ? this.unitSegments[start] : this.chains.get(`${start}+${length}`);
  }

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

/** A state and how many unit segments lie behind it. */
interface Reached {
  state: State;
  depth: number;
}

type RecordRow = (mask: number, row: number, nll: number, count: number) => void;

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

  async walk(record: RecordRow): Promise<void> {
    await this.visit(this.root, '', { state: await this.embedded(), depth: 0 }, record);
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
   * Visits a node, `from` a state at or above it. Only a node that needs its own state computes it: a branch point
   * (kept, pinned while its subtree is walked, for its later children) and a leaf (its head runs); a node with one
   * child passes `from` down, so that a stretch with no branch point runs in as few sessions as its chains allow.
   * The first child of a branch point starts from its state; later ones from the deepest kept prefix on their path.
   */
  private async visit(node: TrieNode, bits: string, from: Reached, record: RecordRow): Promise<void> {
    this.path.push(bits);
    try {
      if (node.masks.length > 0) {
        const out = await this.segment(this.trie.head, await this.reach(from, false), bits);
        const nll = out.evop_nll!.data as Float32Array;
        const count = out.evop_count!.data as Float32Array;
        assertFinite(nll, 'logits', (r) => rowName(this.run.start + r, this.masks[node.masks[0]!]!));
        for (const m of node.masks) for (let r = 0; r < this.run.rows; r++) record(m, r, nll[r]!, count[r]!);
        return;
      }
      if (node.children.size === 1) {
        const [childBits, child] = node.children.entries().next().value!;
        await this.visit(child, bits + childBits, from, record);
        return;
      }
      this.states.pin(this.key(bits));
      try {
        let first: Reached | undefined = { state: await this.reach(from, true), depth: this.path.length - 1 };
        for (const [childBits, child] of node.children) {
          await this.visit(
            child,
            bits + childBits,
            first ?? { state: await this.embedded(), depth: 0 },
            record,
          );
          first = undefined;
        }
      } finally {
        this.states.unpin(this.key(bits));
      }
    } finally {
      this.path.pop();
    }
  }

  /**
   * The state of the node being visited (the deepest on the path), from the deepest kept prefix on the path below
   * it or `from`: the unit segments between run in the longest aligned chains that fit, a pruned pass-through
   * segment alone for free. Every state computed on the way is kept; the node's own only if `keep`.
   */
  private async reach(from: Reached, keep: boolean): Promise<State> {
    const target = this.path.length - 1;
    let { state, depth } = from;
    for (let d = target; d > depth; d--) {
      const kept = this.states.get(this.key(this.path[d]!));
      if (kept) {
        state = kept;
        depth = d;
        break;
      }
    }
    while (depth < target) {
      const length = this.isFreePass(depth) ? 1 : this.chainAt(depth, target);
      state = await this.advance(depth, length, state);
      depth += length;
      if (depth < target || keep) this.states.set(this.key(this.path[depth]!), state);
    }
    return state;
  }

  /** Whether unit segment `depth` is pruned here and passes the stream on unchanged. */
  private isFreePass(depth: number): boolean {
    const segment = this.trie.unitSegments[depth]!;
    return segment.passesStream && !this.ownBits(depth).includes('1');
  }

  /** The bits of unit segment `depth`'s units on the path. */
  private ownBits(depth: number): string {
    const bits = this.path[depth + 1]!;
    return bits.slice(bits.length - this.trie.unitSegments[depth]!.units.length);
  }

  /** The longest aligned chain from `depth` that ends by `target` with no free pass inside (at least 1). */
  private chainAt(depth: number, target: number): number {
    for (const length of CHAIN_LENGTHS) {
      if (depth % length !== 0 || depth + length > target) continue;
      const inside = Array.from({ length }, (_, i) => depth + i);
      if (inside.every((d) => !this.isFreePass(d))) return length;
    }
    return 1;
  }

  /** Runs unit segments [depth, depth + length) on `state` (a free pass costs nothing); the state after them. */
  private async advance(depth: number, length: number, state: State): Promise<State> {
    const end = depth + length;
    let out: State;
    if (this.isFreePass(depth) && length === 1) {
      const segment = this.trie.unitSegments[depth]!;
      out = Object.fromEntries(segment.writes.map((name, j) => [name, state[segment.reads[j]!]!]));
    } else {
      for (let d = depth; d < end; d++)
        this.trie.unitRuns[this.ownBits(d).includes('1') ? 'kept' : 'pruned']++;
      this.trie.sessionRuns++;
      out = await this.segment(this.trie.stretch(depth, length)!, state, this.path[end]!);
    }
    // What later segments read: the cut where the next starts, and values handed on further.
    const next: State = {};
    for (const [name, tensor] of Object.entries({ ...state, ...out }))
      if (this.trie.readAfter(end).has(name)) next[name] = tensor;
    return next;
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

/** Tensors read by the segments after segment `index` (0: the embedding). */
function readsAfter(segments: readonly Segment[], index: number): Set<string> {
  return new Set(segments.slice(index + 1).flatMap((s) => s.reads));
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
