import { closure, type GraphIndex } from './graph-index.ts';
import type { NodeProto } from './proto.ts';

/** Ops whose output carries only the shape of their input, not its values. */
const SHAPE_ONLY = new Set(['Shape', 'Size']);

/** Ops that pass their first input's values on unchanged (exporters cast and reshape token ids and positions). */
export const VALUE_PRESERVING = new Set(['Cast', 'Reshape', 'Identity', 'Flatten', 'Squeeze', 'Unsqueeze']);

/**
 * The graph seen as the flow of values: a tensor depends on another when its value is computed from that
 * tensor's values. Reading only a tensor's shape (`Shape`, `Size`) is no dependence, so masks and positions an
 * exporter derives from the hidden states' shape do not tie them to the residual stream.
 */
export class ValueFlow {
  constructor(readonly index: GraphIndex) {}

  /** Nodes that read the values of `name`. */
  consumersOf(name: string): NodeProto[] {
    return this.index.consumersOf(name).filter((n) => !SHAPE_ONLY.has(n.opType));
  }

  /** The tensors whose values the node's outputs are computed from. */
  inputsOf(node: NodeProto): string[] {
    return SHAPE_ONLY.has(node.opType) ? [] : node.input.filter((name) => name !== '');
  }

  /** Every tensor whose value is computed from `name` (itself included). */
  descendants(name: string): Set<string> {
    return closure(name, (t) => this.consumersOf(t).flatMap((node) => node.output));
  }

  /** Every tensor `name`'s value is computed from, within `within` when given (itself included). */
  ancestors(name: string, within?: Set<string>): Set<string> {
    return closure(name, (t) => {
      const node = this.index.producer.get(t);
      return node ? this.inputsOf(node).filter((input) => !within || within.has(input)) : [];
    });
  }

  /**
   * The tensors every value path from `source` to `sink` passes through, in path order from `source` to `sink`
   * (both included): the dominators of `sink`. On a decoder, from the token embedding to the logits, these are
   * the residual stream between blocks and the single-path steps before and after them.
   */
  dominatorChain(source: string, sink: string): string[] {
    const reach = this.descendants(source);
    if (!reach.has(sink)) return [];
    const between = this.ancestors(sink, reach);
    const order = this.topologicalOrder(source, between);
    const rank = new Map(order.map((name, i) => [name, i]));
    const idom = new Map<string, string>([[source, source]]);
    const intersect = (a: string, b: string): string => {
      while (a !== b) {
        while (rank.get(a)! > rank.get(b)!) a = idom.get(a)!;
        while (rank.get(b)! > rank.get(a)!) b = idom.get(b)!;
      }
      return a;
    };
    for (const name of order.slice(1)) {
      const preds = this.inputsOf(this.index.producer.get(name)!).filter((p) => idom.has(p));
      idom.set(name, preds.slice(1).reduce(intersect, preds[0]!));
    }
    const chain = [sink];
    while (chain.at(-1) !== source) chain.push(idom.get(chain.at(-1)!)!);
    return chain.reverse();
  }

  /** The tensors of `within` in an order where each comes after every tensor it is computed from. */
  private topologicalOrder(source: string, within: Set<string>): string[] {
    const order: string[] = [];
    const placed = new Set<string>();
    const visit = (name: string) => {
      // Iterative post-order: decoders of 100+ layers are deeper than the call stack allows.
      const stack: [string, boolean][] = [[name, false]];
      while (stack.length > 0) {
        const [current, expanded] = stack.pop()!;
        if (placed.has(current)) continue;
        if (expanded) {
          placed.add(current);
          order.push(current);
          continue;
        }
        stack.push([current, true]);
        const node = current === source ? undefined : this.index.producer.get(current);
        for (const input of node ? this.inputsOf(node) : [])
          if (within.has(input) && !placed.has(input)) stack.push([input, false]);
      }
    };
    visit(source);
    for (const name of within) visit(name);
    return order;
  }
}
