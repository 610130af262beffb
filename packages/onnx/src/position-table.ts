import type { GraphIndex } from './graph-index.ts';
import { DataType, type NodeProto, num, type TensorProto } from './proto.ts';
import { elementCount, inlineTensorBytes } from './tensor.ts';
import { VALUE_PRESERVING, type ValueFlow } from './value-flow.ts';

const FLOATING = new Set([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);
const INTEGER = new Set([DataType.INT64, DataType.INT32]);

/**
 * The longest sequence the model can take, where the graph fixes it: a table of one row per position — a learned
 * position embedding [maxPositions, hidden] (GPT-2, OPT) or a precomputed rotary cos/sin table — read by a Gather
 * whose indices are positions. Indices are positions when their values come from the position inputs the model is
 * fed (`positionInputs`: position_ids, cache_position, attention_mask's running sum) or from the sequence's length
 * alone (a Range over a Shape), never from the tokens; a weight gathered by token ids is the vocabulary. Positions
 * 0…T−1 read rows offset…offset+T−1, where offset is a constant the graph adds to the indices on the way (OPT's 2),
 * so T ≤ rows − offset. Undefined where no such table is read (rotary angles computed from their frequencies):
 * the graph then sets no limit of its own.
 */
export function maxPositionsOf(
  index: GraphIndex,
  flow: ValueFlow,
  positionInputs: ReadonlySet<string>,
): number | undefined {
  const initializers = new Map(index.graph.initializer.map((t) => [t.name, t]));
  let max: number | undefined;
  for (const node of index.graph.node) {
    const table = node.opType === 'Gather' ? initializers.get(node.input[0]!) : undefined;
    if (!table || table.dims.length !== 2 || !FLOATING.has(table.dataType) || axisOf(node) !== 0) continue;
    if (!readsPositions(index, flow, node.input[1]!, positionInputs)) continue;
    const positions = num(table.dims[0]) - offsetOf(index, initializers, node.input[1]!);
    max = Math.min(max ?? positions, positions);
  }
  return max;
}

function axisOf(node: NodeProto): number {
  return num(node.attribute.find((a) => a.name === 'axis')?.i);
}

/** Indices computed from position inputs or from a length only, never from another graph input's values. */
function readsPositions(
  index: GraphIndex,
  flow: ValueFlow,
  indices: string,
  positionInputs: ReadonlySet<string>,
): boolean {
  const inputs = [...flow.ancestors(indices)].filter(
    (t) => index.graphInputs.has(t) && !index.initializers.has(t),
  );
  if (inputs.some((t) => !positionInputs.has(t))) return false;
  if (inputs.length > 0) return true;
  // No value from any input: positions 0…T−1 made from a length (Range over a Shape), or a constant index.
  return [...index.ancestorNodes([indices])].some((n) => n.opType === 'Shape' || n.opType === 'Size');
}

/** The integer constant added to the indices just before the Gather (through casts and reshapes), else 0. */
function offsetOf(index: GraphIndex, initializers: Map<string, TensorProto>, indices: string): number {
  let node = index.producer.get(indices);
  while (node && VALUE_PRESERVING.has(node.opType)) node = index.producer.get(node.input[0]!);
  if (node?.opType !== 'Add') return 0;
  for (const operand of node.input) {
    const producer = index.producer.get(operand);
    const tensor =
      initializers.get(operand) ??
      (producer?.opType === 'Constant' ? producer.attribute.find((a) => a.name === 'value')?.t : undefined);
    const value = tensor && scalarInteger(tensor);
    if (value !== undefined) return value;
  }
  return 0;
}

function scalarInteger(tensor: TensorProto): number | undefined {
  const bytes = inlineTensorBytes(tensor);
  if (!bytes || !INTEGER.has(tensor.dataType) || elementCount(tensor) !== 1) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return tensor.dataType === DataType.INT64 ? Number(view.getBigInt64(0, true)) : view.getInt32(0, true);
}
