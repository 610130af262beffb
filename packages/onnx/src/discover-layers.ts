import type { DecoderLayout, GraphInputSpec, ResidualBlock } from './decoder-layout.ts';
import { ModelError } from './errors.ts';
import { GraphIndex, nodeInputs } from './graph-index.ts';
import {
  DataType,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  num,
  type TensorProto,
  type ValueInfoProto,
} from './proto.ts';
import { elementCount, tensorByteLength } from './tensor.ts';

const HOW_TO_EXPORT =
  'export the model without onnxruntime transformer fusions, e.g. `optimum-cli export onnx --model <id> ' +
  '--task text-generation-with-past <dir>` (no --optimize) or torch.onnx.export, and submit that model.onnx';
const LAYER_IN_NAME = /(?:^|[/.])(?:layers|layer|h|blocks|block)\.(\d+)(?:[/.]|$)/;

function shapeOf(v: ValueInfoProto): (number | string)[] {
  return (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : num(d.dimValue)));
}

function spec(v: ValueInfoProto): GraphInputSpec {
  return { name: v.name, elemType: v.type?.tensorType?.elemType ?? 0, shape: shapeOf(v) };
}

/** Refuses graphs whose fused contrib ops hide the residual stream; names the operator, never guesses. */
function refuseFusedOps(graph: GraphProto): void {
  const fused = graph.node.filter((n) => n.domain && n.domain !== 'ai.onnx');
  if (fused.length > 0) {
    const ops = [...new Set(fused.map((n) => `${n.domain}.${n.opType}`))];
    throw new ModelError(
      'fused-operator',
      `the model uses fused operator${ops.length > 1 ? 's' : ''} ${ops.join(', ')} (first at node '${fused[0]!.name}'), ` +
        `which hide the decoder's residual stream from layer pruning; ${HOW_TO_EXPORT}`,
    );
  }
}

/** The token embedding: a Gather of an initializer [vocab, hidden] by `input_ids` (possibly through a Cast). */
function findEmbedding(index: GraphIndex, inputIds: string): NodeProto {
  const frontier = [inputIds];
  for (let depth = 0; depth < 3 && frontier.length > 0; depth++) {
    for (const name of frontier.splice(0)) {
      for (const node of index.consumersOf(name)) {
        if (node.opType === 'Gather' && node.input[1] === name && index.initializers.has(node.input[0]!))
          return node;
        if (node.opType === 'Cast') frontier.push(node.output[0]!);
      }
    }
  }
  throw new ModelError(
    'not-decoder',
    `not a decoder: no token embedding (a Gather by '${inputIds}' of a weight)`,
  );
}

const FLOATING = new Set([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);

/** Weights, norms and biases count as parameters; scalars and integer shape constants do not. */
function isParameter(tensor: TensorProto): boolean {
  return FLOATING.has(tensor.dataType) && elementCount(tensor) > 1;
}

function layerFromNames(nodes: Iterable<NodeProto>): number | undefined {
  const votes = new Map<number, number>();
  for (const node of nodes) {
    const m = LAYER_IN_NAME.exec(node.name);
    if (m) votes.set(Number(m[1]), (votes.get(Number(m[1])) ?? 0) + 1);
  }
  let best: number | undefined;
  for (const [layer, count] of votes) if (best === undefined || count > votes.get(best)!) best = layer;
  return best;
}

/**
 * Finds the decoder layers of an unmodified ONNX export by following its residual stream from the token
 * embedding: each residual Add reads the stream and a branch computed from it. Branches with a Softmax are
 * attention, the others MLP. Works on any pre-norm decoder that is not fused, whatever its node names.
 */
export function discoverLayers(model: ModelProto): DecoderLayout {
  const graph = model.graph;
  if (!graph) throw new ModelError('not-decoder', 'not a decoder: the model has no graph');
  const inputIds = graph.input.find((v) => v.name === 'input_ids');
  if (!inputIds)
    throw new ModelError(
      'not-decoder',
      `not a decoder: it has no 'input_ids' input (inputs: ${graph.input.map((v) => v.name).join(', ') || 'none'})`,
    );
  refuseFusedOps(graph);
  const logits =
    graph.output.find((v) => v.name === 'logits') ??
    (graph.output.length === 1 ? graph.output[0] : undefined);
  if (!logits) throw new ModelError('not-decoder', "not a decoder: it has no 'logits' output");

  const index = new GraphIndex(graph);
  const initializers = new Map(graph.initializer.map((t) => [t.name, t]));
  const embedding = findEmbedding(index, inputIds.name);
  const embeddingWeight = initializers.get(embedding.input[0]!)!;
  if (embeddingWeight.dims.length !== 2)
    throw new ModelError(
      'unknown-pattern',
      `embedding '${embeddingWeight.name}' is not a [vocab, hidden] matrix`,
    );
  const [vocabSize, hiddenSize] = embeddingWeight.dims.map(num) as [number, number];

  const found: { input: string; branch: string; add: NodeProto; nodes: Set<NodeProto> }[] = [];
  let stream = embedding.output[0]!;
  for (;;) {
    const reachable = index.descendants(stream);
    const adds = index
      .consumersOf(stream)
      .filter(
        (n) =>
          n.opType === 'Add' &&
          n.input.includes(stream) &&
          reachable.has(n.input.find((i) => i !== stream) ?? ''),
      );
    if (adds.length === 0) break;
    if (adds.length > 1)
      throw new ModelError(
        'unknown-pattern',
        `residual stream '${stream}' feeds ${adds.length} residual Adds (${adds.map((n) => n.name).join(', ')}); evop expects one per block`,
      );
    const add = adds[0]!;
    const branch = add.input[0] === stream ? add.input[1]! : add.input[0]!;
    const nodes = index.branchNodes(stream, branch);
    found.push({ input: stream, branch, add, nodes });
    stream = add.output[0]!;
  }
  if (found.length === 0)
    throw new ModelError(
      'not-decoder',
      `not a decoder: no residual Add follows the token embedding '${embedding.name}'`,
    );

  const special = new Set(['input_ids', 'attention_mask', 'position_ids']);
  const kvInputs = graph.input.filter((v) => !special.has(v.name) && !index.initializers.has(v.name));
  let layer = -1;
  let previous: 'attn' | 'mlp' = 'mlp';
  const graphOutputs = new Set(graph.output.map((v) => v.name));
  const blocks: ResidualBlock[] = found.map(({ input, branch, add, nodes }, i) => {
    const output = add.output[0]!;
    const kind = [...nodes].some((n) => n.opType === 'Softmax') ? 'attn' : 'mlp';
    if (![...nodes].some((n) => n.opType === 'MatMul' || n.opType === 'Gemm'))
      throw new ModelError(
        'unknown-pattern',
        `residual block ${i} (Add '${output}') has no MatMul or Gemm: not an attention or MLP branch`,
      );
    layer = layerFromNames(nodes) ?? (kind === 'attn' || previous === 'mlp' ? layer + 1 : layer);
    previous = kind;
    const produced = new Set([...nodes].flatMap((n) => n.output));
    const presentOutputs = graph.output.filter((v) => produced.has(v.name)).map((v) => v.name);
    // Nodes a later layer also reads (a rotary table computed once in layer 0, say) are not the block's own.
    const own = index.exclusiveTo(
      nodes,
      add,
      new Set([...graphOutputs].filter((o) => !presentOutputs.includes(o))),
    );
    let params = 0;
    let paramBytes = 0;
    for (const name of new Set([...own].flatMap(nodeInputs))) {
      const tensor = initializers.get(name);
      if (tensor && isParameter(tensor) && index.consumersOf(name).every((n) => own.has(n))) {
        params += elementCount(tensor);
        paramBytes += tensorByteLength(tensor);
      }
    }
    const used = new Set([...nodes].flatMap(nodeInputs));
    return {
      kind,
      layer,
      input,
      branch,
      output,
      params,
      paramBytes,
      pastInputs: kvInputs.filter((v) => used.has(v.name)).map((v) => v.name),
      presentOutputs,
    };
  });
  const unclaimed = kvInputs.filter((v) => !blocks.some((b) => b.pastInputs.includes(v.name)));
  if (unclaimed.length > 0)
    throw new ModelError(
      'unknown-pattern',
      `inputs ${unclaimed.map((v) => `'${v.name}'`).join(', ')} belong to no attention block`,
    );

  return {
    blocks,
    layers: new Set(blocks.map((b) => b.layer)).size,
    inputs: graph.input.filter((v) => !index.initializers.has(v.name)).map(spec),
    inputIds: inputIds.name,
    attentionMask: graph.input.find((v) => v.name === 'attention_mask')?.name,
    positionIds: graph.input.find((v) => v.name === 'position_ids')?.name,
    logits: logits.name,
    vocabSize,
    hiddenSize,
    streamType: embeddingWeight.dataType,
    finalStream: stream,
    totalParams: graph.initializer.reduce((n, t) => n + (isParameter(t) ? elementCount(t) : 0), 0),
  };
}
