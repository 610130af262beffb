import {
  type AttributeProto,
  AttrType,
  type GraphProto,
  make,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './proto.ts';
import { floatTensor, int64Tensor } from './tensor.ts';

export type AttrValue = number | number[] | string | TensorProto;
export type Attrs = Record<string, AttrValue | { float: number }>;

function attribute(name: string, value: AttrValue | { float: number }): AttributeProto {
  if (typeof value === 'string')
    return make.attribute({ name, type: AttrType.STRING, s: Buffer.from(value) });
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new TypeError(`attribute ${name}: pass { float } for non-integers`);
    return make.attribute({ name, type: AttrType.INT, i: value });
  }
  if (Array.isArray(value)) return make.attribute({ name, type: AttrType.INTS, ints: value });
  if ('float' in value) return make.attribute({ name, type: AttrType.FLOAT, f: value.float });
  return make.attribute({ name, type: AttrType.TENSOR, t: value });
}

/** A tensor value info with a dtype and a shape of numbers (fixed) and strings (symbolic). */
export function valueInfo(name: string, elemType: number, shape: (number | string)[]): ValueInfoProto {
  return make.valueInfo({
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

/**
 * Appends nodes to a graph with names in the exporters' style (`<scope>/<Op>`, outputs `<name>_output_0`),
 * unique within the graph, and hides the opset differences of the ops whose axes moved from attribute to input.
 */
export class GraphBuilder {
  private readonly names = new Set<string>();
  private constant = 0;

  constructor(
    readonly graph: GraphProto,
    readonly opset: number,
  ) {
    for (const node of graph.node) {
      this.names.add(node.name);
      for (const out of node.output) this.names.add(out);
    }
    for (const t of graph.initializer) this.names.add(t.name);
    for (const v of graph.input) this.names.add(v.name);
  }

  private unique(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  /** Adds a node; returns its outputs: `outputs` fresh names (default 1), or the names given. */
  node(
    scope: string,
    op: string,
    inputs: string[],
    attrs: Attrs = {},
    outputs: number | string[] = 1,
  ): string[] {
    const name = this.unique(`${scope}/${op}`);
    const outs = Array.isArray(outputs)
      ? outputs.map((out) => this.unique(out))
      : Array.from({ length: outputs }, (_, i) => this.unique(`${name}_output_${i}`));
    const node: NodeProto = make.node({
      name,
      opType: op,
      input: inputs,
      output: outs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    this.graph.node.push(node);
    return outs;
  }

  /** Adds a node with one output and returns it; `output` names it (a graph output, say). */
  op(scope: string, op: string, inputs: string[], attrs: Attrs = {}, output?: string): string {
    return this.node(scope, op, inputs, attrs, output ? [output] : 1)[0]!;
  }

  initializer(tensor: TensorProto): string {
    this.names.add(tensor.name);
    this.graph.initializer.push(tensor);
    return tensor.name;
  }

  floats(scope: string, dims: number[], values: number[] | Float32Array): string {
    return this.initializer(
      floatTensor(this.unique(`${scope}/const_${this.constant++}`), dims, Float32Array.from(values)),
    );
  }

  ints(scope: string, dims: number[], values: number[]): string {
    return this.initializer(int64Tensor(this.unique(`${scope}/const_${this.constant++}`), dims, values));
  }

  unsqueeze(scope: string, x: string, axes: number[]): string {
    return this.opset >= 13
      ? this.op(scope, 'Unsqueeze', [x, this.ints(scope, [axes.length], axes)])
      : this.op(scope, 'Unsqueeze', [x], { axes });
  }

  squeeze(scope: string, x: string, axes: number[]): string {
    return this.opset >= 13
      ? this.op(scope, 'Squeeze', [x, this.ints(scope, [axes.length], axes)])
      : this.op(scope, 'Squeeze', [x], { axes });
  }

  /** Any Reduce* op; ReduceSum took its axes as an input from opset 13, the others from opset 18. */
  reduce(scope: string, op: string, x: string, axes: number[], keepdims: 0 | 1, output?: string): string {
    const axesAsInput = op === 'ReduceSum' ? this.opset >= 13 : this.opset >= 18;
    return axesAsInput
      ? this.op(scope, op, [x, this.ints(scope, [axes.length], axes)], { keepdims }, output)
      : this.op(scope, op, [x], { axes, keepdims }, output);
  }
}
