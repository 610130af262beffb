import type { GraphProto, NodeProto } from './proto.ts';

/**
 * Names a node reads, including the outer-scope values its subgraphs (If, Loop, Scan bodies) use, so that
 * dead-node elimination never removes what a subgraph needs. Over-approximates names a subgraph defines itself.
 */
export function nodeInputs(node: NodeProto): string[] {
  const names = node.input.filter((name) => name !== '');
  for (const attr of node.attribute) {
    for (const sub of [attr.g, ...(attr.graphs ?? [])]) {
      if (sub) for (const inner of sub.node) names.push(...nodeInputs(inner));
    }
  }
  return names;
}

/** `start` and every name `next` leads to from it, transitively. */
export function closure(start: string, next: (name: string) => string[]): Set<string> {
  const seen = new Set([start]);
  const stack = [start];
  while (stack.length > 0) {
    for (const name of next(stack.pop()!)) {
      if (name && !seen.has(name)) {
        seen.add(name);
        stack.push(name);
      }
    }
  }
  return seen;
}

/** Producer and consumers of every tensor of a graph, for walking it in either direction. */
export class GraphIndex {
  readonly producer = new Map<string, NodeProto>();
  readonly consumers = new Map<string, NodeProto[]>();
  readonly initializers: Set<string>;
  readonly graphInputs: Set<string>;

  constructor(readonly graph: GraphProto) {
    this.initializers = new Set(graph.initializer.map((t) => t.name));
    this.graphInputs = new Set(graph.input.map((v) => v.name));
    for (const node of graph.node) {
      for (const out of node.output) if (out) this.producer.set(out, node);
      for (const name of new Set(nodeInputs(node))) {
        const list = this.consumers.get(name);
        if (list) list.push(node);
        else this.consumers.set(name, [node]);
      }
    }
  }

  consumersOf(name: string): NodeProto[] {
    return this.consumers.get(name) ?? [];
  }

  /** Every tensor computed from `name` (itself included). */
  descendants(name: string): Set<string> {
    return closure(name, (t) => this.consumersOf(t).flatMap((node) => node.output));
  }

  /** The nodes of a residual branch: those computed from `input` (not its producer) that `branch` depends on. */
  branchNodes(input: string, branch: string): Set<NodeProto> {
    const reachable = this.descendants(input);
    reachable.delete(input);
    return new Set([...this.ancestorNodes([branch])].filter((n) => n.output.some((o) => reachable.has(o))));
  }

  /**
   * The part of `nodes` that only `sink` needs: nodes whose every output feeds only other such nodes or `sink`,
   * and is not in `kept` (graph outputs, say). Removing `sink` makes exactly these dead.
   */
  exclusiveTo(nodes: Set<NodeProto>, sink: NodeProto, kept: Set<string>): Set<NodeProto> {
    const own = new Set(nodes);
    for (let changed = true; changed; ) {
      changed = false;
      for (const node of own) {
        const needed = node.output.some(
          (o) => kept.has(o) || this.consumersOf(o).some((c) => c !== sink && !own.has(c)),
        );
        if (needed) {
          own.delete(node);
          changed = true;
        }
      }
    }
    return own;
  }

  /** Every node that `names` are computed from, stopping at tensors in `stop`. */
  ancestorNodes(names: string[], stop: Set<string> = new Set()): Set<NodeProto> {
    const nodes = new Set<NodeProto>();
    const stack = names.filter((n) => !stop.has(n));
    const seen = new Set(stack);
    while (stack.length > 0) {
      const node = this.producer.get(stack.pop()!);
      if (!node || nodes.has(node)) continue;
      nodes.add(node);
      for (const input of nodeInputs(node)) {
        if (!seen.has(input) && !stop.has(input)) {
          seen.add(input);
          stack.push(input);
        }
      }
    }
    return nodes;
  }
}

/**
 * Reorders nodes so that each comes after the producers of everything it reads (outer-scope reads of
 * subgraphs included), keeping the original order where it already holds.
 */
export function sortTopologically(graph: GraphProto): void {
  const producer = new Map<string, NodeProto>();
  for (const node of graph.node) for (const out of node.output) if (out) producer.set(out, node);
  const placed = new Set<NodeProto>();
  const sorted: NodeProto[] = [];
  const visit = (node: NodeProto, path: Set<NodeProto>) => {
    if (placed.has(node)) return;
    if (path.has(node)) throw new Error(`graph has a cycle through node '${node.name}'`);
    path.add(node);
    for (const input of nodeInputs(node)) {
      const p = producer.get(input);
      if (p && p !== node) visit(p, path);
    }
    path.delete(node);
    placed.add(node);
    sorted.push(node);
  };
  for (const node of graph.node) visit(node, new Set());
  graph.node = sorted;
}

/**
 * Removes every node no graph output depends on, then the initializers and value infos nothing reads any more.
 * Graph inputs stay: they are the model's interface, which callers change explicitly.
 */
export function eliminateDeadNodes(graph: GraphProto): void {
  const index = new GraphIndex(graph);
  const live = index.ancestorNodes(graph.output.map((o) => o.name));
  graph.node = graph.node.filter((node) => live.has(node));
  const used = new Set(graph.output.map((o) => o.name));
  for (const node of graph.node) {
    for (const name of nodeInputs(node)) used.add(name);
    for (const name of node.output) used.add(name);
  }
  graph.initializer = graph.initializer.filter((t) => used.has(t.name));
  graph.valueInfo = graph.valueInfo.filter((v) => used.has(v.name));
}

/** Makes every node that reads a key of `rename` read its value instead (outer-scope reads of subgraphs too). */
export function renameUses(graph: GraphProto, rename: Map<string, string>): void {
  if (rename.size === 0) return;
  for (const node of graph.node) {
    node.input = node.input.map((name) => rename.get(name) ?? name);
    for (const attr of node.attribute) {
      for (const sub of [attr.g, ...(attr.graphs ?? [])]) if (sub) renameUses(sub, rename);
    }
  }
}

/** Renames tensors everywhere: where nodes write them, read them, and in the graph's inputs and outputs. */
export function renameTensors(graph: GraphProto, rename: Map<string, string>): void {
  renameUses(graph, rename);
  for (const node of graph.node) node.output = node.output.map((name) => rename.get(name) ?? name);
  for (const v of [...graph.input, ...graph.output, ...graph.valueInfo])
    v.name = rename.get(v.name) ?? v.name;
  for (const t of graph.initializer) t.name = rename.get(t.name) ?? t.name;
}
