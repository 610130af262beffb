import { cloneForEdit, setMetadata } from './clone-model.ts';
import type { DecoderLayout } from './decoder-layout.ts';
import { ModelError } from './errors.ts';
import { GraphIndex, nodeInputs } from './graph-index.ts';
import { type ModelProto, make, type NodeProto } from './proto.ts';
import { type Granularity, unitsOf } from './units.ts';

/**
 * A piece of the search graph (`instrument`) between two cuts of the residual stream: the embedding (no units),
 * one unit or the units that share one residual sum (a parallel layer's attention and MLP at sublayer
 * granularity), or the head (no units). Run one after another, each fed what the earlier ones wrote, they
 * compute what the search graph computes, node for node: the same nodes, the same `If`s around the branches.
 */
export interface Segment {
  /** Indices of the units it computes, in order; empty for the embedding and the head. */
  units: number[];
  /**
   * Tensors it takes from earlier segments: first the cut where it starts (the stream, or the two operands of the
   * Add that makes it), then values computed further back.
   */
  reads: string[];
  /** Tensors later segments take from it: first the cut where it ends. The head writes none. */
  writes: string[];
  /** The search graph's inputs it reads (`input_ids`, `evop_gate`, …). */
  inputs: string[];
  /**
   * With all its units pruned, the cut where it ends holds, tensor for tensor, what the cut where it starts holds
   * (its residual sums add zeros), and it writes nothing else: a pruned segment then need not run.
   */
  passesStream: boolean;
}

/**
 * Cuts the search graph at the residual stream between units, where discovery found it. Where an Add makes the
 * stream, the cut is at its two operands and the Add goes with the segment after it: onnxruntime fuses a residual
 * Add with the norm that reads its sum (SkipLayerNormalization), so cutting at the sum would change the numbers.
 * A node belongs to the segment of the latest cut it reads (subgraph reads included); nodes that read no cut
 * (constants, rotary tables and masks computed from the inputs) are computed again in every segment that needs
 * them, so that each segment holds the very nodes the search graph has there. Values a segment reads from further
 * back than the cut where it starts (exporters derive masks and shapes from the hidden states' shape) are handed
 * on.
 */
export function splitAtUnits(search: ModelProto, layout: DecoderLayout, granularity: Granularity): Segment[] {
  const units = unitsOf(layout, granularity);
  const groups: number[][] = [];
  const endOf = (u: number) => layout.blocks[units[u]!.blocks.at(-1)!]!.output;
  units.forEach((_, u) => {
    const last = groups.at(-1);
    if (last && endOf(last.at(-1)!) === endOf(u)) last.push(u);
    else groups.push([u]);
  });
  const streams = [layout.blocks[0]!.input, ...groups.map((g) => endOf(g.at(-1)!))];
  const graph = search.graph;
  const index = new GraphIndex(graph);
  const computed = (name: string) =>
    !index.initializers.has(name) && index.producer.get(name)?.opType !== 'Constant';
  const sumOf = (stream: string) => {
    const node = index.producer.get(stream);
    return node?.opType === 'Add' && node.input.every(computed) ? node : undefined;
  };
  const sums = streams.map(sumOf);
  const cuts = streams.map((stream, i) => sums[i]?.input ?? [stream]);
  const streamIndex = new Map(streams.map((name, i) => [name, i]));
  // stage: −1 reads no stream; i reads stream i (segment i + 1: the embedding is segment 0, the head the last).
  // The Add that makes stream i goes with its readers.
  const stage = new Map<string, number>();
  const stageOfNode = new Map<NodeProto, number>();
  for (const node of graph.node) {
    let s = Math.max(-1, ...nodeInputs(node).map((name) => streamIndex.get(name) ?? stage.get(name) ?? -1));
    const made = node.output.find((name) => streamIndex.has(name));
    if (made !== undefined) {
      const i = streamIndex.get(made)!;
      if (s !== i - 1)
        throw new ModelError(
          'unknown-pattern',
          `the residual stream '${made}' is not computed where discovery put it`,
        );
      if (sums[i] === node) s = i;
    }
    stageOfNode.set(node, s);
    for (const out of node.output) stage.set(out, s);
  }
  // The segment that computes a tensor; none for those that read no stream, computed again where needed.
  const writerOf = (name: string): number | undefined => {
    if (cuts[0]!.includes(name)) return 0;
    const s = stage.get(name) ?? -1;
    return s >= 0 ? s + 1 : undefined;
  };
  const reads = cuts.map((cut) => [...cut]);
  const writes = cuts.map((cut) => [...cut]);
  for (const node of graph.node) {
    const reader = stageOfNode.get(node)! + 1;
    for (const name of new Set(nodeInputs(node))) {
      const writer = writerOf(name);
      if (writer === undefined || writer >= reader || reads[reader - 1]!.includes(name)) continue;
      reads[reader - 1]!.push(name);
      if (!writes[writer]!.includes(name)) writes[writer]!.push(name);
    }
  }
  // Each block reads the stream as it was left (or, side by side in a parallel layer, as the segment got it) and
  // adds its branch to that very tensor; the cut's tensors feed nothing but the Add of the stream they make.
  const passes = (g: number[], i: number) => {
    let stream = streams[i]!;
    for (const b of g.flatMap((u) => units[u]!.blocks)) {
      const block = layout.blocks[b]!;
      if (block.skip !== block.input || (block.input !== stream && block.input !== streams[i])) return false;
      stream = block.output;
    }
    const sum = sums[i + 1];
    return (
      sum !== undefined &&
      writes[i + 1]!.length === cuts[i + 1]!.length &&
      cuts[i]!.length === cuts[i + 1]!.length &&
      cuts[i + 1]!.every((name) => index.consumersOf(name).every((n) => n === sum))
    );
  };
  const inputsOf = (segmentReads: string[], segmentWrites: string[]) => {
    const outputs = segmentWrites.length > 0 ? segmentWrites : graph.output.map((o) => o.name);
    const read = new Set([...index.ancestorNodes(outputs, new Set(segmentReads))].flatMap(nodeInputs));
    return graph.input.map((v) => v.name).filter((name) => read.has(name));
  };
  const segment = (units: number[], i: number, passesStream: boolean): Segment => {
    const segmentReads = i > 0 ? reads[i - 1]! : [];
    const segmentWrites = writes[i] ?? [];
    return {
      units,
      reads: segmentReads,
      writes: segmentWrites,
      inputs: inputsOf(segmentReads, segmentWrites),
      passesStream,
    };
  };
  return [
    segment([], 0, false),
    ...groups.map((g, i) => segment(g, i + 1, passes(g, i))),
    segment([], cuts.length, false),
  ];
}

/**
 * Consecutive segments as one (a chain of trie nodes with no branch point inside runs as one session): it reads
 * what the first reads, then what later ones read from before it; it writes the last one's writes, then whatever
 * any of them writes that segments after it read (`later`).
 */
export function joinSegments(run: readonly Segment[], later: ReadonlySet<string>): Segment {
  const reads: string[] = [];
  const written = new Set<string>();
  for (const segment of run) {
    for (const name of segment.reads) if (!written.has(name) && !reads.includes(name)) reads.push(name);
    for (const name of segment.writes) written.add(name);
  }
  const last = run.at(-1)!;
  const handedOn = [...written].filter((name) => later.has(name) && !last.writes.includes(name));
  return {
    units: run.flatMap((s) => s.units),
    reads,
    writes: [...last.writes, ...handedOn],
    inputs: [...new Set(run.flatMap((s) => s.inputs))],
    passesStream: false,
  };
}

/**
 * The search graph with `names` as extra outputs (their types left to onnxruntime): one run of it tells the
 * element type and shape of every tensor handed from segment to segment.
 */
export function withOutputs(search: ModelProto, names: readonly string[]): ModelProto {
  const out = cloneForEdit(search);
  out.graph.output.push(...names.map((name) => make.valueInfo({ name })));
  return out;
}

/** A tensor handed between segments, as measured: its element type and sizes (null: one that varies by run). */
export interface CutType {
  elemType: number;
  shape: (number | null)[];
}

/**
 * One segment as a model of its own: the nodes its outputs need, stopping at what earlier segments hand on,
 * which become its inputs. The head keeps the search graph's outputs. Initializers are shared with `search`,
 * never copied.
 *
 * onnxruntime's fusions read the shapes it knows (SkipLayerNormalization needs both operands of the Add known
 * and equal), so an input is declared with what the search graph declares for that tensor (exporters' value
 * infos), else with its element type, rank and fixed sizes only: sizes that vary stay unnamed, as unknown as
 * onnxruntime finds them behind the search graph's `If`s.
 */
export function segmentModel(
  search: ModelProto,
  segment: Segment,
  types: ReadonlyMap<string, CutType>,
): ModelProto {
  const out = cloneForEdit(search);
  const graph = out.graph;
  const index = new GraphIndex(graph);
  const outputs = segment.writes.length > 0 ? segment.writes : graph.output.map((o) => o.name);
  const nodes = index.ancestorNodes(outputs, new Set(segment.reads));
  graph.node = graph.node.filter((n) => nodes.has(n));
  const used = new Set(graph.node.flatMap((n) => [...nodeInputs(n), ...n.output]));
  graph.initializer = graph.initializer.filter((t) => used.has(t.name));
  graph.valueInfo = graph.valueInfo.filter((v) => used.has(v.name) && !segment.reads.includes(v.name));
  const declared = new Map(search.graph.valueInfo.map((v) => [v.name, v]));
  const typed = (name: string) => {
    const known = declared.get(name);
    if (known) return make.valueInfo({ ...known });
    const type = types.get(name);
    if (!type) throw new Error(`segment tensor '${name}' has no type`);
    return make.valueInfo({
      name,
      type: {
        tensorType: {
          elemType: type.elemType,
          shape: { dim: type.shape.map((d) => (d === null ? {} : { dimValue: d })) },
        },
      },
    });
  };
  graph.input = [...graph.input.filter((v) => segment.inputs.includes(v.name)), ...segment.reads.map(typed)];
  if (segment.writes.length > 0) graph.output = segment.writes.map(typed);
  setMetadata(out, { 'evop.segment': JSON.stringify({ units: segment.units }) });
  return out;
}
