import { cloneForEdit, setMetadata } from './clone-model.ts';
import type { DecoderLayout, ResidualBlock } from './decoder-layout.ts';
import { ModelError } from './errors.ts';
import { eliminateDeadNodes, GraphIndex, nodeInputs, renameTensors, renameUses } from './graph-index.ts';
import { type GraphProto, type ModelProto, make, type NodeProto } from './proto.ts';
import { sumTree } from './residual-stream.ts';
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

  bypassPrunedBranches(graph, index, layout, prunedBlocks);

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
 * Removes the pruned branches from their residual sums: each sum keeps the Adds of its kept terms, an Add left
 * with one operand is bypassed (its readers read that operand), so a sum with no kept term is the stream passed
 * on. Graph outputs that were bypassed are written by an Identity.
 */
function bypassPrunedBranches(
  graph: GraphProto,
  index: GraphIndex,
  layout: DecoderLayout,
  prunedBlocks: Set<number>,
): void {
  const rename = new Map<string, string>();
  const resolve = (name: string) => rename.get(name) ?? name;
  const removed = new Set<NodeProto>();
  for (const output of new Set(layout.blocks.map((b) => b.output))) {
    const blocks = layout.blocks.map((b, i) => ({ b, i })).filter(({ b }) => b.output === output);
    if (!blocks.some(({ i }) => prunedBlocks.has(i))) continue;
    const skip = blocks[0]!.b.skip;
    const kept = new Set(blocks.filter(({ i }) => !prunedBlocks.has(i)).map(({ b }) => b.branch));
    const leaves = new Set([skip, ...blocks.map(({ b }) => b.branch)]);
    const tree = new Set(sumTree(index.producer, output, leaves));
    // What a tensor of the tree sums to once the pruned terms are gone: a name, or nothing left.
    const sumOf = (name: string): string | undefined => {
      if (leaves.has(name)) return name === skip || kept.has(name) ? resolve(name) : undefined;
      const add = index.producer.get(name)!;
      const [a, b] = add.input.map(sumOf);
      if (a && b) return name;
      removed.add(add);
      rename.set(name, (a ?? b)!);
      return a ?? b;
    };
    sumOf(output);
    for (const add of tree) if (!removed.has(add)) add.input = add.input.map(resolve);
  }
  graph.node = graph.node.filter((n) => !removed.has(n));
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
