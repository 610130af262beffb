import { ModelError } from './errors.ts';
import { type NodeProto, num } from './proto.ts';
import type { ValueFlow } from './value-flow.ts';

/** Ops that pass the stream on unchanged in value (a Cast, when it casts to the type the stream has). */
const PASS_THROUGH = new Set(['Identity', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Dropout']);
const MATMULS = new Set(['MatMul', 'Gemm', 'MatMulInteger', 'Einsum', 'Conv']);
/** ONNX's own attention operator (opset 23); a Softmax alone proves nothing (MoE routers have one too). */
const ATTENTION_OPS = new Set(['Attention']);

/** One contribution to a residual sum: a branch computed from the stream, with weights. */
export interface ResidualTerm {
  /** The tensor added to the stream. */
  name: string;
  kind: 'attn' | 'mlp';
  /** The branch's nodes between the stream and `name`, its own or shared with the other terms of the sum. */
  cone: Set<NodeProto>;
  /** The cone's products of the stream with weights. */
  weights: NodeProto[];
}

/** `output = skip + Σ terms`, where `skip` is the stream `input` passed on and each term is computed from it. */
export interface ResidualSum {
  input: string;
  output: string;
  skip: string;
  terms: ResidualTerm[];
}

/** The residual stream of a decoder from its token embedding to its logits. */
export interface ResidualStream {
  sums: ResidualSum[];
  /** The stream after the last sum. */
  final: string;
  /** ONNX element type of the stream through the sums (the embedding's, unless a Cast changed it before). */
  type: number;
}

/**
 * Follows a decoder's residual stream from the token embedding to the logits. The stream is the chain of
 * tensors every value path from one to the other passes through (`ValueFlow.dominatorChain`); between two of
 * them lies either one step (a cast, a scale, a position embedding, a norm) or a residual sum: an Add tree whose
 * leaves are the stream itself (through value-preserving ops) and one or more branches with weights — attention
 * and MLP one after another, or side by side in parallel-residual layers. Before the first sum and after the last
 * anything may happen (embedding scale and position, final norm, head); between sums only steps that keep the
 * stream's value, so that removing blocks means what it says.
 */
export function followResidualStream(
  flow: ValueFlow,
  embedding: string,
  logits: string,
  embeddingType: number,
): ResidualStream {
  const chain = flow.dominatorChain(embedding, logits);
  if (chain.length === 0)
    throw new ModelError(
      'not-decoder',
      `not a decoder: the logits are not computed from the token embedding`,
    );
  const sums: ResidualSum[] = [];
  let steps: NodeProto[] = [];
  let type = embeddingType;
  let streamType = embeddingType;
  for (let i = 0; i + 1 < chain.length; i++) {
    const sum = residualSum(flow, chain[i]!, chain[i + 1]!);
    if (sum) {
      if (sums.length === 0) streamType = type;
      sums.push(sum);
      const changing = steps.find((node) => !keepsValue(node, streamType));
      steps = [];
      if (sums.length > 1 && changing)
        throw new ModelError(
          'unknown-pattern',
          `a ${changing.opType} ('${changing.name}') changes the residual stream between two residual blocks ` +
            `(a post-norm decoder?); evop removes blocks of pre-norm decoders, whose stream passes from block to block unchanged`,
        );
    } else {
      const node = flow.index.producer.get(chain[i + 1]!)!;
      if (node.opType === 'Cast') type = castTarget(node);
      steps.push(node);
    }
  }
  if (sums.length === 0) return { sums, final: embedding, type };
  // Attention or a weighted branch outside any residual sum means a block was not recognised: better to refuse.
  const first = sums[0]!.input;
  const last = sums.at(-1)!.output;
  for (const [from, to] of [
    [embedding, first],
    [last, logits],
  ] as const) {
    const reach = { from, tensors: flow.descendants(from) };
    const mixing = [...segmentNodes(flow, from, to)].find((n) => mixesPositions(flow, n, reach));
    if (mixing)
      throw new ModelError(
        'unknown-pattern',
        `'${mixing.name}' (${mixing.opType}) mixes positions outside any residual block; evop found no residual Add around it`,
      );
  }
  return { sums, final: last, type: streamType };
}

function castTarget(node: NodeProto): number {
  return num(node.attribute.find((a) => a.name === 'to')?.i);
}

function keepsValue(node: NodeProto, streamType: number): boolean {
  return PASS_THROUGH.has(node.opType) || (node.opType === 'Cast' && castTarget(node) === streamType);
}

/** The nodes computed from `from` (not its producer) that `to` is computed from, `to`'s producer included. */
function segmentNodes(flow: ValueFlow, from: string, to: string): Set<NodeProto> {
  const reach = flow.descendants(from);
  const nodes = new Set<NodeProto>();
  for (const name of flow.ancestors(to, reach)) {
    if (name === from) continue;
    const node = flow.index.producer.get(name);
    if (node) nodes.add(node);
  }
  return nodes;
}

/** `from → to` as a residual sum, or undefined when it is a plain step. */
function residualSum(flow: ValueFlow, from: string, to: string): ResidualSum | undefined {
  const root = flow.index.producer.get(to);
  if (!root || root.opType !== 'Add') return undefined;
  const reach = { from, tensors: flow.descendants(from) };
  const cone = (name: string) => {
    const nodes = new Set<NodeProto>();
    for (const t of flow.ancestors(name, reach.tensors)) {
      const node = t === from ? undefined : flow.index.producer.get(t);
      if (node) nodes.add(node);
    }
    return nodes;
  };
  const weighted = (nodes: Set<NodeProto>) =>
    new Set([...nodes].filter((n) => MATMULS.has(n.opType) && readsConstantSide(flow, n, reach)));
  const operands = (node: NodeProto) => node.input.filter((name) => name !== '');
  if (!operands(root).every((x) => reach.tensors.has(x))) return undefined;

  // Flatten the Add tree: an Add of two independent weighted parts (no weight in common) is a sum of terms.
  const leaves: string[] = [];
  const flatten = (name: string) => {
    const node = flow.index.producer.get(name);
    if (name !== from && node?.opType === 'Add' && operands(node).every((x) => reach.tensors.has(x))) {
      const [a, b] = operands(node).map((x) => weighted(cone(x)));
      if (a && b && ![...a].some((n) => b.has(n))) {
        for (const x of operands(node)) flatten(x);
        return;
      }
    }
    leaves.push(name);
  };
  for (const x of operands(root)) flatten(x);
  const classified = leaves.map((name) => ({ name, cone: cone(name) }));
  const skips = classified.filter((l) => weighted(l.cone).size === 0);
  const terms = classified.filter((l) => weighted(l.cone).size > 0);
  if (skips.length !== 1 || terms.length === 0) return undefined;
  return {
    input: from,
    output: to,
    skip: skips[0]!.name,
    terms: terms.map(({ name, cone: nodes }) => ({
      name,
      cone: nodes,
      weights: [...weighted(nodes)],
      kind: [...nodes].some((n) => mixesPositions(flow, n, reach)) ? 'attn' : 'mlp',
    })),
  };
}

/** A stream tensor and everything computed from it. */
interface Reach {
  from: string;
  tensors: Set<string>;
}

/** Ops that move or pick values without computing new ones: a weight passed through them is still a weight. */
const MOVES = new Set([
  'Identity',
  'Cast',
  'Reshape',
  'Flatten',
  'Squeeze',
  'Unsqueeze',
  'Transpose',
  'Expand',
  'Slice',
  'Gather',
  'GatherElements',
  'GatherND',
]);

/**
 * A weight: not computed from the stream, or weights picked by indices that are (an MoE layer's experts,
 * gathered per token by its router).
 */
function isWeight(flow: ValueFlow, name: string, reach: Reach): boolean {
  if (!reach.tensors.has(name)) return true;
  if (name === reach.from) return false;
  const node = flow.index.producer.get(name);
  return node !== undefined && MOVES.has(node.opType) && isWeight(flow, node.input[0]!, reach);
}

/** A matrix product of the stream with a weight. */
function readsConstantSide(flow: ValueFlow, node: NodeProto, reach: Reach): boolean {
  const inputs = node.input.slice(0, 2).filter((x) => x !== '');
  const weights = inputs.filter((x) => isWeight(flow, x, reach));
  return weights.length > 0 && weights.length < inputs.length;
}

/**
 * Attention, recognised by what it does rather than by a Softmax node alone: a product of two tensors both
 * computed from the stream (queries × keys, weights × values), or ONNX's attention operator.
 */
function mixesPositions(flow: ValueFlow, node: NodeProto, reach: Reach): boolean {
  if (ATTENTION_OPS.has(node.opType)) return true;
  if (node.opType !== 'MatMul' && node.opType !== 'Einsum') return false;
  return node.input.filter((x) => x !== '' && !isWeight(flow, x, reach)).length >= 2;
}

/**
 * The Add nodes that sum a residual's skip and terms into `output`, from the root down: every Add on the way
 * from `output` to the `leaves` (the skip and the terms, as discovery found them).
 */
export function sumTree(producer: Map<string, NodeProto>, output: string, leaves: Set<string>): NodeProto[] {
  const tree: NodeProto[] = [];
  const visit = (name: string) => {
    if (leaves.has(name)) return;
    const node = producer.get(name);
    if (!node || node.opType !== 'Add')
      throw new ModelError('unknown-pattern', `'${name}' is not part of the residual sum into '${output}'`);
    tree.push(node);
    for (const input of node.input) visit(input);
  };
  visit(output);
  return tree;
}
