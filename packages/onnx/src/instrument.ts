import { cloneForEdit, setMetadata } from './clone-model.ts';
import type { DecoderLayout } from './decoder-layout.ts';
import { GraphBuilder, valueInfo } from './graph-builder.ts';
import { eliminateDeadNodes, GraphIndex, sortTopologically } from './graph-index.ts';
import { AttrType, DataType, defaultOpset, type GraphProto, type ModelProto, make } from './proto.ts';
import { floatTensor } from './tensor.ts';
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
}

/** Bumped whenever the search graph changes, so that graphs cached by an older evop are not reused. */
export const INSTRUMENT_VERSION = 2;

export const GATE_INPUT = 'evop_gate';
export const LABELS_INPUT = 'evop_labels';
export const IGNORE_LABEL = -100;

/**
 * The search graph of DESIGN.md: each unit's residual branches are multiplied by that row's `evop_gate` column
 * before their residual Add (0 = the unit pruned, exactly the residual identity; 1 = the original), and the
 * loss is computed inside the graph from `evop_labels` (−100 = ignore): outputs `evop_nll` [B] (summed NLL) and
 * `evop_count` [B], never the [B, T, vocab] logits.
 */
export function instrument(model: ModelProto, layout: DecoderLayout, options: InstrumentOptions): ModelProto {
  const out = cloneForEdit(model);
  const graph = out.graph!;
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
  const columns = units.map((unit, u) => {
    const column = b.op(s, 'Gather', [GATE_INPUT, b.ints(s, [], [u])], { axis: 1 });
    const gate3 = b.unsqueeze(s, column, [1, 2]);
    const gate = layout.streamType === F ? gate3 : b.op(s, 'Cast', [gate3], { to: layout.streamType });
    for (const blockIndex of unit.blocks) {
      const block = layout.blocks[blockIndex]!;
      const gated = b.op(s, 'Mul', [block.branch, gate]);
      const add = index.producer.get(block.output)!;
      add.input = add.input.map((name) => (name === block.branch ? gated : name));
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

  // Positions that count for pooling and cosines: the attended ones (the mask covers past + T; past is empty).
  const positions = layout.attentionMask
    ? b.op(s, 'Cast', [layout.attentionMask], { to: F })
    : b.op(s, 'ConstantOfShape', [b.op(s, 'Shape', [LABELS_INPUT])], {
        value: floatTensor('one', [1], Float32Array.of(1)),
      });
  const positionCount = b.reduce(s, 'ReduceSum', positions, [1], 1);

  if (options.pooled) {
    const stream = toFloat(layout.finalStream, layout.streamType);
    const sum = b.reduce(s, 'ReduceSum', b.op(s, 'Mul', [stream, b.unsqueeze(s, positions, [2])]), [1], 0);
    b.op(s, 'Div', [sum, positionCount], {}, 'evop_pooled');
    graph.output.push(valueInfo('evop_pooled', F, ['batch_size', layout.hiddenSize]));
  }
  if (options.unitCos) {
    const cosines = units.map((unit) => {
      const x = toFloat(layout.blocks[unit.blocks[0]!]!.input, layout.streamType);
      const y = toFloat(layout.blocks[unit.blocks.at(-1)!]!.output, layout.streamType);
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
  if (options.skipClosed ?? true) skipClosedBranches(graph, b, layout, units, columns);
  sortTopologically(graph);
  setMetadata(out, {
    'evop.instrumented': JSON.stringify({ granularity: options.granularity, units: units.map((u) => u.id) }),
  });
  return out;
}

/**
 * Moves each residual branch, with its Add, into the then-branch of an `If` on "some row's gate is open"; the
 * else-branch passes the stream through, exactly what the gated Add gives when every gate is 0. Nodes the branch
 * shares with the rest of the graph stay outside, read as outer-scope values.
 */
function skipClosedBranches(
  graph: GraphProto,
  b: GraphBuilder,
  layout: DecoderLayout,
  units: Unit[],
  columns: string[],
): void {
  const index = new GraphIndex(graph);
  const outputs = new Set(graph.output.map((o) => o.name));
  const s = '/evop/skip';
  units.forEach((unit, u) => {
    const open = b.op(s, 'Greater', [b.reduce(s, 'ReduceMax', columns[u]!, [0], 0), b.floats(s, [], [0])]);
    for (const blockIndex of unit.blocks) {
      const block = layout.blocks[blockIndex]!;
      const add = index.producer.get(block.output)!;
      const gated = add.input.find((name) => name !== block.input)!;
      const own = index.exclusiveTo(index.branchNodes(block.input, gated), add, outputs);
      const branchNodes = graph.node.filter((n) => own.has(n));
      const thenOut = `${block.output}/open`;
      const elseOut = `${block.output}/closed`;
      const thenBranch = make.graph({
        name: `${block.kind}${block.layer}_open`,
        node: [...branchNodes, make.node({ ...add, output: [thenOut] })],
        output: [make.valueInfo({ name: thenOut })],
      });
      const elseBranch = make.graph({
        name: `${block.kind}${block.layer}_closed`,
        node: [
          make.node({
            name: `${add.name}/pass`,
            opType: 'Identity',
            input: [block.input],
            output: [elseOut],
          }),
        ],
        output: [make.valueInfo({ name: elseOut })],
      });
      graph.node = graph.node.filter((n) => !own.has(n) && n !== add);
      graph.node.push(
        make.node({
          name: `${add.name}/skip`,
          opType: 'If',
          input: [open],
          output: [block.output],
          attribute: [
            make.attribute({ name: 'then_branch', type: AttrType.GRAPH, g: thenBranch }),
            make.attribute({ name: 'else_branch', type: AttrType.GRAPH, g: elseBranch }),
          ],
        }),
      );
    }
  });
}
