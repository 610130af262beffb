import { cloneForEdit, setMetadata } from './clone-model.ts';
import type { DecoderLayout, ResidualBlock } from './decoder-layout.ts';
import { ModelError } from './errors.ts';
import { eliminateDeadNodes, GraphIndex, nodeInputs, renameTensors, renameUses } from './graph-index.ts';
import { type GraphProto, type ModelProto, make, type NodeProto } from './proto.ts';
import { checkMask, type Granularity, unitsOf } from './units.ts';

export interface PruneOptions {
  granularity: Granularity;
  /** sha256 of the source model, recorded in the pruned model's metadata. */
  sourceSha256: string;
  /** When given, the mask must prune exactly this many units. */
  expectedPruned?: number;
}

/** The first number in a KV tensor name that equals its layer (`past_key_values.3.key`, `present_3`). */
function renumbered(name: string, from: number, to: number): string {
  return name.replace(new RegExp(`(?<!\\d)${from}(?!\\d)`), String(to));
}

/** A KV name with its layer number blanked: the role it plays in any layer (`past_key_values.#.key`). */
function kvRole(name: string, layer: number): string {
  return renumbered(name, layer, -1);
}

/**
 * The physically pruned model of DESIGN.md: each pruned unit's residual Add is bypassed and everything only it
 * needed removed (nodes, initializers), its KV-cache inputs and outputs dropped and the remaining ones renumbered
 * 0…k−1, and `metadata_props` recording the mask, the units and the source model's sha256.
 */
export function pruneModel(
  model: ModelProto,
  layout: DecoderLayout,
  mask: string,
  options: PruneOptions,
): ModelProto {
  const units = unitsOf(layout, options.granularity);
  checkMask(mask, units, options.expectedPruned);
  const prunedBlocks = new Set(units.filter((_, u) => mask[u] === '0').flatMap((u) => u.blocks));
  const out = cloneForEdit(model);
  const graph = out.graph!;
  const index = new GraphIndex(graph);

  // Bypass: readers of a pruned block's output read its input instead (chains of pruned blocks collapse).
  const rename = new Map<string, string>();
  const removedAdds = new Set<NodeProto>();
  layout.blocks.forEach((block, i) => {
    if (!prunedBlocks.has(i)) return;
    rename.set(block.output, rename.get(block.input) ?? block.input);
    removedAdds.add(index.producer.get(block.output)!);
  });
  graph.node = graph.node.filter((n) => !removedAdds.has(n));
  renameUses(graph, rename);
  for (const output of graph.output) {
    const source = rename.get(output.name);
    if (source)
      graph.node.push(
        make.node({
          name: `/evop/${output.name}`,
          opType: 'Identity',
          input: [source],
          output: [output.name],
        }),
      );
  }

  const attention = layout.blocks.filter((b) => b.kind === 'attn');
  const kept = attention.filter((b) => !prunedBlocks.has(layout.blocks.indexOf(b)));
  const dropped = attention.filter((b) => prunedBlocks.has(layout.blocks.indexOf(b)));
  const droppedPast = new Set(dropped.flatMap((b) => b.pastInputs));
  const droppedPresent = new Set(dropped.flatMap((b) => b.presentOutputs));
  graph.output = graph.output.filter((v) => !droppedPresent.has(v.name));
  eliminateDeadNodes(graph);
  redirectSharedPastReads(graph, dropped, kept, droppedPast);
  graph.input = graph.input.filter((v) => !droppedPast.has(v.name));

  const kvRename = new Map<string, string>();
  kept.forEach((block, j) => {
    for (const name of [...block.pastInputs, ...block.presentOutputs])
      if (block.layer !== j) kvRename.set(name, renumbered(name, block.layer, j));
  });
  renameTensors(graph, kvRename);
  eliminateDeadNodes(graph);

  setMetadata(out, {
    'evop.mask': mask,
    'evop.granularity': options.granularity,
    'evop.units': JSON.stringify(
      units.map((u, i) => ({ id: u.id, kept: mask[i] === '1', params: u.params })),
    ),
    'evop.source_sha256': options.sourceSha256,
    'evop.kv_layers': String(kept.length),
  });
  return out;
}

/**
 * Exporters often read the past length from layer 0's cache (`Shape(past_key_values.0.key)`), outside any
 * block. When that layer's attention is pruned, such reads move to the same-role input of the first kept
 * attention layer, which has the same shape.
 */
function redirectSharedPastReads(
  graph: GraphProto,
  dropped: ResidualBlock[],
  kept: ResidualBlock[],
  droppedPast: Set<string>,
): void {
  const stillRead = new Set(graph.node.flatMap(nodeInputs).filter((name) => droppedPast.has(name)));
  if (stillRead.size === 0) return;
  const redirect = new Map<string, string>();
  for (const name of stillRead) {
    const owner = dropped.find((b) => b.pastInputs.includes(name))!;
    const role = kvRole(name, owner.layer);
    const target = kept.flatMap((b) => b.pastInputs.filter((p) => kvRole(p, b.layer) === role))[0];
    if (!target)
      throw new ModelError(
        'unknown-pattern',
        `'${name}' is read outside its attention block and no kept attention layer has an input like it`,
      );
    redirect.set(name, target);
  }
  renameUses(graph, redirect);
}
