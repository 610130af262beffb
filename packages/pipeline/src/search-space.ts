import { SearchOptionError, SearchSpace } from '@evop/core';
import { type DecoderLayout, type Unit, unitsOf } from '@evop/onnx';
import { PipelineError } from './pipeline-error.ts';
import type { SearchSpec } from './search-spec.ts';

/** The model's units at the spec's granularity and the masks that meet its target. */
export function searchSpaceFor(
  layout: DecoderLayout,
  spec: SearchSpec,
): { units: Unit[]; space: SearchSpace } {
  const units = unitsOf(layout, spec.granularity);
  try {
    const space = new SearchSpace({
      units: units.map((u) => ({ id: u.id, params: u.params })),
      target: spec.target,
    });
    return { units, space };
  } catch (err) {
    if (err instanceof SearchOptionError) throw new PipelineError(err.option, err.reason);
    throw err;
  }
}
