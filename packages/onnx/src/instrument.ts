import { cloneForEdit, setMetadata } from './clone-model.ts';
import type { DecoderLayout, ResidualBlock } from './decoder-layout.ts';
import { GraphBuilder, valueInfo } from './graph-builder.ts';
import { eliminateDeadNodes, GraphIndex, sortTopologically } from './graph-index.ts';
import {
  AttrType,
  DataType,
  defaultOpset,
  type GraphProto,
  type ModelProto,
  make,
  type NodeProto,
} from './proto.ts';
import { sumTree } from './residual-stream.ts';
import { floatTensor, tensorByteLength } from './tensor.ts';
import { type Granularity, type Unit, unitsOf } from './units.ts';

export interface InstrumentOptions {
  granularity: Granularity;
  /** Add `evop_pooled` [B, hidden]: the final residual stream averaged over attended positions (CCDS). */
  pooled?: boolean;
  /** Add `evop_unit_cos` [B, U]: per unit, the mean cosine of its input and output stream (ShortGPT). */
  unitCos?: boolean;
  /**
   * Wrap each residual branch in an `If` that skips it when its gate is 0 in every row of the run, so that a
   * run of one mask costs what the pruned model costs (default true). Rows with mixed gates still compute it.
   */
  skipClosed?: boolean;
  /** Add `evop_last_logits` [B, vocab]: the last position's logits in float32, for checking the graph. */
  lastLogits?: boolean;
}

/** Bumped whenever the search graph changes, so that graphs cached by an older evop are not reused. */
export const INSTRUMENT_VERSION = 3;

export const GATE_INPUT = 'evop_gate';
export const LABELS_INPUT = 'evop_labels';
export const IGNORE_LABEL = -100;
export const LAST_LOGITS_OUTPUT = 'evop_last_logits';

/**
 * The search graph: each unit's residual branches are multiplied by that row's `evop_gate` column before their
 * residual sum (0 = the unit pruned, exactly the residual identity; 1 = the original), and the
 * loss is computed inside the graph from `evop_labels` (−100 = ignore): outputs `evop_nll` [B] (summed NLL) and
 * `evop_count` [B], never the [B, T, vocab] logits.
 */
export function instrument(model: ModelProto, layout: DecoderLayout, options: InstrumentOptions): ModelProto {
  const out = cloneForEdit(model);
  const graph = out.graph;
  const b = new GraphBuilder(graph, defaultOpset(model));
  const index = new GraphIndex(graph);
  const F = DataType.FLOAT;
  const units = unitsOf(layout, options.granularity);
  const s = '/evop';
  const toFloat = (x: string, type: number) => (type === F ? x : b.op(s, 'Cast', [x], { to: F }));

  graph.input.push(
    valueInfo(GATE_INPUT, F, ['batch_size', units.length]),
    valueInfo(LABELS_INPUT, DataType.INT64, ['batch_size', 'sequence_length']),
  );
  // Stream tensors as [batch, positions, hidden], however the export lays them out ([batch × positions, hidden]
  // between OPT's blocks, say): rows stay batch-major, so a row's gate and positions line up.
  const batch = b.op(s, 'Slice', [
    b.op(s, 'Shape', [layout.inputIds]),
    b.ints(s, [1], [0]),
    b.ints(s, [1], [1]),
  ]);
  const rowShape = b.op(s, 'Concat', [batch, b.ints(s, [2], [-1, layout.hiddenSize])], { axis: 0 });
  const byRow = (x: string) => b.op(s, 'Reshape', [x, rowShape]);

  // Found before any gate is inserted: a parallel layer's two branches share their sum's Adds.
  const sinks = layout.blocks.map((block) => sumSink(index, layout, block));
  const gatedOf = new Map<number, string>();
  const columns = units.map((unit, u) => {
    const column = b.op(s, 'Gather', [GATE_INPUT, b.ints(s, [], [u])], { axis: 1 });
    const gate3 = b.unsqueeze(s, column, [1, 2]);
    const gate = layout.streamType === F ? gate3 : b.op(s, 'Cast', [gate3], { to: layout.streamType });
    for (const blockIndex of unit.blocks) {
      const block = layout.blocks[blockIndex]!;
      const sink = sinks[blockIndex]!;
      const gated = b.op(s, 'Reshape', [
        b.op(s, 'Mul', [byRow(block.branch), gate]),
        b.op(s, 'Shape', [block.branch]),
      ]);
      sink.input = sink.input.map((name) => (name === block.branch ? gated : name));
      gatedOf.set(blockIndex, gated);
    }
    return column;
  });

  const logits = toFloat(layout.logits, layout.streamType);
  const labels = LABELS_INPUT;
  const valid = b.op(s, 'Not', [b.op(s, 'Equal', [labels, b.ints(s, [], [IGNORE_LABEL])])]);
  const safeLabels = b.op(s, 'Where', [valid, labels, b.ints(s, [], [0])]);
  const picked = b.squeeze(
    s,
    b.op(s, 'GatherElements', [logits, b.unsqueeze(s, safeLabels, [2])], { axis: 2 }),
    [2],
  );
  const logNorm = b.reduce(s, 'ReduceLogSumExp', logits, [2], 0);
  const validF = b.op(s, 'Cast', [valid], { to: F });
  const tokenNll = b.op(s, 'Mul', [b.op(s, 'Sub', [logNorm, picked]), validF]);
  b.reduce(s, 'ReduceSum', tokenNll, [1], 0, 'evop_nll');
  b.reduce(s, 'ReduceSum', validF, [1], 0, 'evop_count');
  graph.output = [valueInfo('evop_nll', F, ['batch_size']), valueInfo('evop_count', F, ['batch_size'])];
  if (options.lastLogits) {
    lastPosition(b, s, logits, LAST_LOGITS_OUTPUT);
    graph.output.push(valueInfo(LAST_LOGITS_OUTPUT, F, ['batch_size', layout.vocabSize]));
  }

  // Positions that count for pooling and cosines: the attended ones (the mask covers past + T; past is empty).
  const positions = layout.attentionMask
    ? b.op(s, 'Cast', [layout.attentionMask], { to: F })
    : b.op(s, 'ConstantOfShape', [b.op(s, 'Shape', [LABELS_INPUT])], {
        value: floatTensor('one', [1], Float32Array.of(1)),
      });
  const positionCount = b.reduce(s, 'ReduceSum', positions, [1], 1);
  const stream = (name: string) => toFloat(byRow(name), layout.streamType);

  if (options.pooled) {
    const sum = b.reduce(
      s,
      'ReduceSum',
      b.op(s, 'Mul', [stream(layout.finalStream), b.unsqueeze(s, positions, [2])]),
      [1],
      0,
    );
    b.op(s, 'Div', [sum, positionCount], {}, 'evop_pooled');
    graph.output.push(valueInfo('evop_pooled', F, ['batch_size', layout.hiddenSize]));
  }
  if (options.unitCos) {
    const cosines = units.map((unit) => {
      const x = stream(layout.blocks[unit.blocks[0]!]!.input);
      const y = stream(layout.blocks[unit.blocks.at(-1)!]!.output);
      const dot = b.reduce(s, 'ReduceSum', b.op(s, 'Mul', [x, y]), [2], 0);
      const norm = (v: string) => b.op(s, 'Sqrt', [b.reduce(s, 'ReduceSum', b.op(s, 'Mul', [v, v]), [2], 0)]);
      const denominator = b.op(s, 'Add', [b.op(s, 'Mul', [norm(x), norm(y)]), b.floats(s, [], [1e-12])]);
      const cosine = b.op(s, 'Div', [dot, denominator]);
      return b.op(s, 'Div', [
        b.reduce(s, 'ReduceSum', b.op(s, 'Mul', [cosine, positions]), [1], 1),
        positionCount,
      ]);
    });
    b.op(s, 'Concat', cosines, { axis: 1 }, 'evop_unit_cos');
    graph.output.push(valueInfo('evop_unit_cos', F, ['batch_size', units.length]));
  }

  eliminateDeadNodes(graph);
  if (options.skipClosed ?? true) skipClosedBranches(graph, b, layout, units, columns, gatedOf);
  sortTopologically(graph);
  setMetadata(out, {
    'evop.instrumented': JSON.stringify({ granularity: options.granularity, units: units.map((u) => u.id) }),
  });
  return out;
}

/** `x`[:, −1] of a [B, T, …] tensor. */
export function lastPosition(b: GraphBuilder, scope: string, x: string, output: string): string {
  return b.op(scope, 'Gather', [x, b.ints(scope, [], [-1])], { axis: 1 }, output);
}

/** The Add of the block's residual sum that reads its branch. */
function sumSink(index: GraphIndex, layout: DecoderLayout, block: ResidualBlock): NodeProto {
  const leaves = layout.blocks.filter((o) => o.output === block.output).map((o) => o.branch);
  const tree = sumTree(index.producer, block.output, new Set([block.skip, ...leaves]));
  return tree.find((n) => n.input.includes(block.branch))!;
}

/**
 * Moves each gated residual branch into the then-branch of an `If` on "some row's gate is open"; the
 * else-branch gives zeros of the stream's shape, exactly what the gated branch gives when every gate is 0.
 * Nodes the branch shares with the rest of the graph stay outside, read as outer-scope values.
 */
function skipClosedBranches(
  graph: GraphProto,
  b: GraphBuilder,
  layout: DecoderLayout,
  units: Unit[],
  columns: string[],
  gatedOf: Map<number, string>,
): void {
  const index = new GraphIndex(graph);
  const outputs = new Set(graph.output.map((o) => o.name));
  const s = '/evop/skip';
  const zero = make.tensor({
    name: 'zero',
    dims: [1],
    dataType: layout.streamType,
    rawData: new Uint8Array(tensorByteLength(make.tensor({ dims: [1], dataType: layout.streamType }))),
  });
  units.forEach((unit, u) => {
    const open = b.op(s, 'Greater', [b.reduce(s, 'ReduceMax', columns[u]!, [0], 0), b.floats(s, [], [0])]);
    for (const blockIndex of unit.blocks) {
      const block = layout.blocks[blockIndex]!;
      const gated = gatedOf.get(blockIndex)!;
      const sink = index.consumersOf(gated)[0]!;
      const own = index.exclusiveTo(index.branchNodes(block.input, gated), sink, outputs);
      const name = `${block.kind}${block.layer}`;
      const thenOut = `${gated}/open`;
      const elseOut = `${gated}/closed`;
      const thenBranch = make.graph({
        name: `${name}_open`,
        node: graph.node
          .filter((n) => own.has(n))
          .map((n) =>
            n.output.includes(gated)
              ? make.node({ ...n, output: n.output.map((o) => (o === gated ? thenOut : o)) })
              : n,
          ),
        output: [make.valueInfo({ name: thenOut })],
      });
      const shape = `${gated}/shape`;
      const elseBranch = make.graph({
        name: `${name}_closed`,
        node: [
          make.node({ name: `${shape}/node`, opType: 'Shape', input: [block.skip], output: [shape] }),
          make.node({
            name: `${elseOut}/node`,
            opType: 'ConstantOfShape',
            input: [shape],
            output: [elseOut],
            attribute: [make.attribute({ name: 'value', type: AttrType.TENSOR, t: zero })],
          }),
        ],
        output: [make.valueInfo({ name: elseOut })],
      });
      graph.node = graph.node.filter((n) => !own.has(n));
      graph.node.push(
        make.node({
          name: `${gated}/skip`,
          opType: 'If',
          input: [open],
          output: [gated],
          attribute: [
            make.attribute({ name: 'then_branch', type: AttrType.GRAPH, g: thenBranch }),
            make.attribute({ name: 'else_branch', type: AttrType.GRAPH, g: elseBranch }),
          ],
        }),
      );
    }
  });
}
