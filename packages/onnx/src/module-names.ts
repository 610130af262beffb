import type { NodeProto } from './proto.ts';

/** A layer index in a module path: `model.layers.3`, `transformer.h.3`, `gpt_neox.layers.3`, `blocks.3`. */
const LAYER_IN_MODULE = /(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+)(?:\.|$)/;

/**
 * The PyTorch module a node was exported from, dotted (`model.layers.3.self_attn.q_proj`), when the exporter
 * recorded it: the dynamo exporter in the node's `pkg.torch.onnx.name_scopes` metadata (IR 10), the TorchScript
 * exporter in the node's name (`/model/layers.3/self_attn/q_proj/MatMul`). Undefined when neither says.
 */
export function moduleOf(node: NodeProto): string | undefined {
  const scopes = node.metadataProps.find((p) => p.key === 'pkg.torch.onnx.name_scopes')?.value;
  if (scopes) {
    // A Python list literal of module paths, the node's own name last: ['', 'model', 'model.layers.0', 'view'].
    const paths = [...scopes.matchAll(/'([^']*)'/g)].map((m) => m[1]!);
    return paths.length >= 2 ? paths.at(-2) : undefined;
  }
  if (node.name.startsWith('/')) return node.name.split('/').filter(Boolean).slice(0, -1).join('.');
  return undefined;
}

/** The longest module path all the given ones lie under ('' when they share none); undefined when none is known. */
export function commonModule(modules: (string | undefined)[]): string | undefined {
  const known = modules.filter((m): m is string => m !== undefined);
  if (known.length === 0) return undefined;
  let common = known[0]!.split('.');
  for (const module of known.slice(1)) {
    const parts = module.split('.');
    let i = 0;
    while (i < common.length && common[i] === parts[i]) i++;
    common = common.slice(0, i);
  }
  return common.join('.');
}

export function layerInModule(module: string | undefined): number | undefined {
  const m = module === undefined ? null : LAYER_IN_MODULE.exec(module);
  return m ? Number(m[1]) : undefined;
}
