import { createStrategy, SearchOptionError, SearchSpace, type Target } from '@evop/core';
import { type DecoderLayout, type Unit, unitsOf } from '@evop/onnx';
import { PipelineError } from './pipeline-error.ts';
import { type SearchSpec, strategiesOf } from './search-spec.ts';
import { checkContext } from './spec-limits.ts';

/**
 * The model's units at the spec's granularity and the masks that meet its target, with every strategy the spec
 * runs checked against them, so that a spec no search can run is refused before any work (a budget smaller than
 * one population, a seqLen past the model's context, say), naming the field.
 */
export function planSearch(layout: DecoderLayout, spec: SearchSpec): SearchPlan {
  checkContext(layout, spec);
  const units = unitsOf(layout, spec.granularity);
  if (spec.balance === 'attn-mlp' && spec.granularity !== 'sublayer')
    throw new PipelineError(
      'balance',
      'attn-mlp balances attention and MLP blocks: use granularity sublayer',
    );
  const spaceOf = (target: Target, field: string) => {
    try {
      return new SearchSpace({
        units: units.map((u) => ({ id: u.id, params: u.params })),
        target,
        ...(spec.balance === 'attn-mlp' ? { balance: units.map((u) => u.kind) } : {}),
      });
    } catch (err) {
      if (err instanceof SearchOptionError)
        throw new PipelineError(err.option.replace(/^target/, field), err.reason);
      throw err;
    }
  };
  const space = spaceOf(spec.target, 'target');
  // A spec stored by an earlier evop has no front.
  const front = (spec.front ?? []).map((target, i) => spaceOf(target, `front.${i}`));
  const counts = [space.pruned];
  front.forEach((s, i) => {
    if (counts.includes(s.pruned))
      throw new PipelineError(`front.${i}`, `prunes ${s.pruned} units, as another target does`);
    counts.push(s.pruned);
  });
  const influence = units.map(() => 0); // measured later; only its length matters here
  try {
    for (const name of strategiesOf(spec))
      createStrategy(name, space, { seed: spec.seed, budget: spec.budget, influence });
    for (const s of front)
      createStrategy(spec.strategy, s, { seed: spec.seed, budget: spec.budget, influence });
  } catch (err) {
    if (err instanceof SearchOptionError) throw new PipelineError(err.option, err.reason);
    throw err;
  }
  return { units, space, front: frontOrder(front, space.pruned) };
}

/** A spec's units and search spaces: its target's, and its front's in the order they are searched. */
export interface SearchPlan {
  units: Unit[];
  space: SearchSpace;
  front: SearchSpace[];
}

/**
 * The front's targets in the order they are searched: nearest to the spec's target first (fewer units first on a
 * tie), so that each is seeded from a point searched already on either side of it where there is one.
 */
function frontOrder(front: SearchSpace[], pruned: number): SearchSpace[] {
  return [...front].sort(
    (a, b) => Math.abs(a.pruned - pruned) - Math.abs(b.pruned - pruned) || a.pruned - b.pruned,
  );
}
