import type { DecoderLayout, GraphInputSpec, ResidualBlock } from './decoder-layout.ts';
import { ModelError } from './errors.ts';
import { GraphIndex, nodeInputs } from './graph-index.ts';
import { commonModule, layerInModule, moduleOf } from './module-names.ts';
import { maxPositionsOf } from './position-table.ts';
import {
  DataType,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  num,
  type TensorProto,
  type ValueInfoProto,
} from './proto.ts';
import { followResidualStream, type ResidualSum, type ResidualTerm, sumTree } from './residual-stream.ts';
import { elementCount, tensorByteLength } from './tensor.ts';
import { VALUE_PRESERVING, ValueFlow } from './value-flow.ts';

/** Bumped whenever discovery finds something else in some model, so that stored layouts are found again. */
export const DISCOVERY_VERSION = 3;

const HOW_TO_EXPORT =
  'export the model without onnxruntime transformer fusions, e.g. `optimum-cli export onnx --model <id> ' +
  '--task text-generation-with-past <dir>` (no --optimize) or torch.onnx.export, and submit that model.onnx';

/** Inputs evop knows how to feed, by the names Hugging Face exports give them; all others must be KV cache. */
const FED_INPUTS = {
  inputIds: 'input_ids',
  attentionMask: 'attention_mask',
  positionIds: 'position_ids',
  cachePosition: 'cache_position',
  tokenTypeIds: 'token_type_ids',
} as const;

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

/** The token embedding: a Gather of a [vocab, hidden] weight by `input_ids` (through casts and reshapes). */
function findEmbedding(index: GraphIndex, inputIds: string): NodeProto {
  const frontier = [inputIds];
  for (let depth = 0; depth < 4 && frontier.length > 0; depth++) {
    for (const name of frontier.splice(0)) {
      for (const node of index.consumersOf(name)) {
        if (node.opType === 'Gather' && node.input[1] === name && index.initializers.has(node.input[0]!))
          return node;
        if (VALUE_PRESERVING.has(node.opType) && node.input[0] === name) frontier.push(node.output[0]!);
      }
    }
  }
  throw new ModelError(
    'not-decoder',
    `not a decoder: no token embedding (a Gather by '${inputIds}' of a weight)`,
  );
}

const WEIGHT_PRODUCTS = new Set(['MatMul', 'Gemm', 'MatMulInteger', 'Einsum', 'Conv']);
const FLOATING = new Set([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);

/** Weights, norms and biases count as parameters; scalars and integer shape constants do not. */
function isParameter(tensor: TensorProto): boolean {
  return FLOATING.has(tensor.dataType) && elementCount(tensor) > 1;
}

interface FoundBlock {
  sum: ResidualSum;
  term: ResidualTerm;
  module: string | undefined;
}

/**
 * Finds the decoder layers of an unmodified ONNX export by following its residual stream from the token
 * embedding to the logits (see `followResidualStream`), whatever its node names: each residual sum's branches
 * are the prunable blocks, attention when they mix positions, MLP otherwise; a parallel-residual layer gives two
 * blocks on one sum. KV-cache inputs and outputs belong to the attention block whose branch they feed.
 */
export function discoverLayers(model: ModelProto): DecoderLayout {
  const graph = model.graph;
  if (!graph) throw new ModelError('not-decoder', 'not a decoder: the model has no graph');
  const inputIds = graph.input.find((v) => v.name === FED_INPUTS.inputIds);
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
  const flow = new ValueFlow(index);
  const initializers = new Map(graph.initializer.map((t) => [t.name, t]));
  const embedding = findEmbedding(index, inputIds.name);
  const embeddingWeight = initializers.get(embedding.input[0]!)!;
  if (embeddingWeight.dims.length !== 2)
    throw new ModelError(
      'unknown-pattern',
      `embedding '${embeddingWeight.name}' is not a [vocab, hidden] matrix`,
    );
  const [vocabSize, hiddenSize] = embeddingWeight.dims.map(num) as [number, number];

  const stream = followResidualStream(flow, embedding.output[0]!, logits.name, embeddingWeight.dataType);
  if (stream.sums.length === 0)
    throw new ModelError(
      'not-decoder',
      `not a decoder: no residual Add follows the token embedding '${embedding.name}'`,
    );
  const found: FoundBlock[] = stream.sums.flatMap((sum) =>
    [...sum.terms]
      .sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'attn' ? -1 : 1))
      .map((term) => ({ sum, term, module: commonModule(term.weights.map(moduleOf)) })),
  );
  const layerOf = assignLayers(found);

  const fed = new Set<string>(Object.values(FED_INPUTS));
  const kvInputs = graph.input
    .filter((v) => !fed.has(v.name) && !index.initializers.has(v.name))
    .map((v) => v.name);
  const pastOf = assignPastInputs(flow, found, kvInputs);
  const presentOf = assignPresentOutputs(flow, found, kvInputs, pastOf, logits.name, graph.output);

  const graphOutputs = new Set(graph.output.map((v) => v.name));
  const blocks: ResidualBlock[] = found.map(({ sum, term, module }, i) => {
    const presentOutputs = presentOf[i]!;
    const sink = sumTree(
      index.producer,
      sum.output,
      new Set([sum.skip, ...sum.terms.map((t) => t.name)]),
    ).find((n) => n.input.includes(term.name))!;
    // Nodes a later layer also reads (a rotary table computed once in layer 0, say) are not the block's own.
    const own = index.exclusiveTo(
      index.branchNodes(sum.input, term.name),
      sink,
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
    return {
      kind: term.kind,
      layer: layerOf[i]!,
      input: sum.input,
      branch: term.name,
      skip: sum.skip,
      output: sum.output,
      ...(module ? { module } : {}),
      params,
      paramBytes,
      pastInputs: pastOf[i]!,
      presentOutputs,
    };
  });
  const layers = new Set(blocks.map((b) => b.layer)).size;
  checkLayerCount(index, blocks, layers, kvInputs.length > 0);

  const inputName = (name: string) => graph.input.find((v) => v.name === name)?.name;
  const cachePosition = inputName(FED_INPUTS.cachePosition);
  const tokenTypeIds = inputName(FED_INPUTS.tokenTypeIds);
  const maxPositions = maxPositionsOf(
    index,
    flow,
    new Set([FED_INPUTS.positionIds, FED_INPUTS.cachePosition, FED_INPUTS.attentionMask]),
  );
  const layerModules = Array.from({ length: layers }, (_, l) =>
    commonModule(blocks.filter((b) => b.layer === l).map((b) => b.module)),
  );
  return {
    version: DISCOVERY_VERSION,
    blocks,
    layers,
    ...(layerModules.some((m) => m) ? { layerModules } : {}),
    inputs: graph.input.filter((v) => !index.initializers.has(v.name)).map(spec),
    inputIds: inputIds.name,
    attentionMask: inputName(FED_INPUTS.attentionMask),
    positionIds: inputName(FED_INPUTS.positionIds),
    ...(cachePosition ? { cachePosition } : {}),
    ...(tokenTypeIds ? { tokenTypeIds } : {}),
    ...(maxPositions !== undefined ? { maxPositions } : {}),
    logits: logits.name,
    embedding: embeddingWeight.name,
    vocabSize,
    hiddenSize,
    streamType: stream.type,
    finalStream: stream.final,
    totalParams: graph.initializer.reduce((n, t) => n + (isParameter(t) ? elementCount(t) : 0), 0),
  };
}

/**
 * Layer numbers: the module names' own (`model.layers.3`) when every block has one and they never go back;
 * otherwise by structure: a sum with attention starts a layer, and an MLP-only sum joins the layer before it
 * unless that layer has its MLP already.
 */
function assignLayers(found: FoundBlock[]): number[] {
  const named = found.map((f) => layerInModule(f.module));
  const first = named[0];
  if (
    first !== undefined &&
    named.every((n, i) => n !== undefined && (i === 0 || n >= named[i - 1]!)) &&
    new Set(named).size === named.at(-1)! - first + 1
  )
    return named.map((n) => n! - first);
  const layers: number[] = [];
  let layer = -1;
  let hasMlp = true;
  found.forEach((f, i) => {
    const sameSum = i > 0 && found[i - 1]!.sum === f.sum;
    const startsLayer = !sameSum && (f.sum.terms.some((t) => t.kind === 'attn') || hasMlp);
    if (startsLayer) {
      layer++;
      hasMlp = false;
    }
    if (f.term.kind === 'mlp') hasMlp = true;
    layers.push(layer);
  });
  return layers;
}

/**
 * A KV-cache input belongs to the attention block whose branch is the first computed from it: the cache is
 * read there, and everything after depends on it only through the stream.
 */
function assignPastInputs(flow: ValueFlow, found: FoundBlock[], kvInputs: string[]): string[][] {
  const past: string[][] = found.map(() => []);
  for (const name of kvInputs) {
    const reach = flow.descendants(name);
    const owner = found.findIndex(
      (f) => f.term.kind === 'attn' && reach.has(f.term.name) && !reach.has(f.sum.input),
    );
    if (owner < 0)
      throw new ModelError(
        'unknown-pattern',
        `input '${name}' is neither one evop feeds (${Object.values(FED_INPUTS).join(', ')}) nor a KV cache ` +
          `read by an attention block`,
      );
    past[owner]!.push(name);
  }
  return past;
}

/**
 * A graph output other than the logits is a KV-cache output: it belongs to the block whose past input it is
 * computed from, or, in exports without past inputs, to the attention block between whose stream in and out
 * it is computed.
 */
function assignPresentOutputs(
  flow: ValueFlow,
  found: FoundBlock[],
  kvInputs: string[],
  pastOf: string[][],
  logits: string,
  outputs: ValueInfoProto[],
): string[][] {
  const present: string[][] = found.map(() => []);
  for (const { name } of outputs) {
    if (name === logits) continue;
    const from = flow.ancestors(name);
    // The last such block: a present output also depends on every earlier layer's cache, through the stream.
    let owner = pastOf.findLastIndex((names) => names.some((p) => from.has(p)));
    if (owner < 0 && kvInputs.length === 0)
      owner = found.findIndex(
        (f) => f.term.kind === 'attn' && from.has(f.sum.input) && !from.has(f.sum.output),
      );
    if (owner < 0)
      throw new ModelError(
        'unknown-pattern',
        `output '${name}' is neither the logits nor a KV-cache output of an attention block`,
      );
    present[owner]!.push(name);
  }
  return present;
}

/**
 * Never silently wrong: the layers found must be the layers the graph shows, in its module names
 * (`model.layers.0` … `model.layers.N`) and its KV cache (every attention block has its own).
 */
function checkLayerCount(
  index: GraphIndex,
  blocks: ResidualBlock[],
  layers: number,
  hasCache: boolean,
): void {
  // Layers named by their weights' products: a pruned model keeps other nodes of removed layers it still needs.
  const named = new Set(
    index.graph.node
      .filter((n) => WEIGHT_PRODUCTS.has(n.opType) && n.input.some((x) => index.initializers.has(x)))
      .map((n) => layerInModule(moduleOf(n)))
      .filter((l) => l !== undefined),
  );
  if (named.size > 0 && named.size !== layers)
    throw new ModelError(
      'unknown-pattern',
      `evop found ${layers} decoder layer${layers === 1 ? '' : 's'} on the residual stream, but the graph's ` +
        `module names show ${named.size}; some residual blocks have a pattern evop does not recognise`,
    );
  const attention = blocks.filter((b) => b.kind === 'attn');
  const uncached = attention.filter((b) => b.pastInputs.length === 0);
  if (hasCache && uncached.length > 0)
    throw new ModelError(
      'unknown-pattern',
      `the model has a KV cache, but evop found none for the attention block of layer ${uncached[0]!.layer}`,
    );
}
