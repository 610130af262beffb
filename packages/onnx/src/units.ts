import type { DecoderLayout } from './decoder-layout.ts';
import { MaskError } from './errors.ts';

/** `layer`: one unit per decoder layer; `sublayer`: its attention and MLP branches, ordered attn0, mlp0, attn1, … */
export type Granularity = 'layer' | 'sublayer';

/** A prunable piece of the model: one or more residual blocks removed together. */
export interface Unit {
  id: string;
  kind: 'layer' | 'attn' | 'mlp';
  layer: number;
  /** Indices into `DecoderLayout.blocks`. */
  blocks: number[];
  params: number;
  paramBytes: number;
  /** The PyTorch module it was exported from (`model.layers.3.self_attn`), when the export says. */
  module?: string;
}

export function unitsOf(layout: DecoderLayout, granularity: Granularity): Unit[] {
  if (granularity === 'sublayer')
    return layout.blocks.map((b, i) => ({
      id: `${b.kind}${b.layer}`,
      kind: b.kind,
      layer: b.layer,
      blocks: [i],
      params: b.params,
      paramBytes: b.paramBytes,
      ...(b.module ? { module: b.module } : {}),
    }));
  const units: Unit[] = [];
  layout.blocks.forEach((b, i) => {
    const last = units.at(-1);
    if (last && last.layer === b.layer) {
      last.blocks.push(i);
      last.params += b.params;
      last.paramBytes += b.paramBytes;
    } else {
      const module = layout.layerModules?.[b.layer];
      units.push({
        id: `layer${b.layer}`,
        kind: 'layer',
        layer: b.layer,
        blocks: [i],
        params: b.params,
        paramBytes: b.paramBytes,
        ...(module ? { module } : {}),
      });
    }
  });
  return units;
}

/**
 * Checks a mask (one character per unit, '1' keep, '0' prune) against the units and, when given, the number of
 * units it must prune; throws a MaskError saying what is wrong.
 */
export function checkMask(mask: string, units: readonly Unit[], expectedPruned?: number): void {
  if (mask.length !== units.length)
    throw new MaskError(`mask '${mask}' has ${mask.length} bits; the model has ${units.length} units`);
  const bad = mask.search(/[^01]/);
  if (bad >= 0)
    throw new MaskError(
      `mask '${mask}' has '${mask[bad]}' at position ${bad}; use only 0 (prune) and 1 (keep)`,
    );
  const pruned = mask.length - mask.replaceAll('0', '').length;
  if (expectedPruned !== undefined && pruned !== expectedPruned)
    throw new MaskError(`mask '${mask}' prunes ${pruned} units; the target is ${expectedPruned}`);
}
