import { createStrategy, SearchOptionError, SearchSpace } from '@evop/core';
import { type DecoderLayout, type Unit, unitsOf } from '@evop/onnx';
import { PipelineError } from './pipeline-error.ts';
import { type SearchSpec, strategiesOf } from './search-spec.ts';
import { checkContext } from './spec-limits.ts';

/**
 * The model's units at the spec's granularity and the masks that meet its target, with every strategy the spec
 * runs checked against them, so that a spec no search can run is refused before any work (a budget smaller than
 * one population, a seqLen past the model's context, say), naming the field.
 */
export function planSearch(layout: DecoderLayout, spec: SearchSpec): { units: Unit[]; space: SearchSpace } {
  checkContext(layout, spec);
  const units = unitsOf(layout, spec.granularity);
  if (spec.balance === 'attn-mlp' && spec.granularity !== 'sublayer')
    throw new PipelineError(
      'balance',
      'attn-mlp balances attention and MLP blocks: use granularity sublayer',
    );
  try {
    const space = new SearchSpace({
      units: units.map((u) => ({ id: u.id, params: u.params })),
      target: spec.target,
      ...(spec.balance === 'attn-mlp' ? { balance: units.map((u) => u.kind) } : {}),
    });
    const influence = units.map(() => 0); // measured later; only its length matters here
    for (const name of strategiesOf(spec))
      createStrategy(name, space, { seed: spec.seed, budget: spec.budget, influence });
    return { units, space };
  } catch (err) {
    if (err instanceof SearchOptionError) throw new PipelineError(err.option, err.reason);
    throw err;
  }
}
