import type { TokenWindows } from '@evop/data';
import type { MaskEvaluation } from './onnx-evaluator.ts';

/** What the search asks of an evaluator: per mask, the summed NLL over windows (OnnxEvaluator, TrieEvaluator). */
export interface MaskScorer {
  readonly units: number;
  evaluate(
    masks: readonly string[],
    windows: TokenWindows,
    options?: { clusterOf?: ArrayLike<number>; signal?: AbortSignal },
  ): Promise<MaskEvaluation[]>;
}

/** Throws unless every mask is `units` bits of 0/1. */
export function checkMasks(masks: readonly string[], units: number): void {
  for (const mask of masks)
    if (mask.length !== units || /[^01]/.test(mask))
      throw new RangeError(`mask '${mask}' is not ${units} bits of 0/1`);
}

/** A row in an error message: its window, and its mask unless every unit is kept. */
export function rowName(window: number, mask: string): string {
  return `window ${window}${maskNote(mask)}`;
}

export function maskNote(mask: string): string {
  return mask.includes('0') ? ` (mask ${mask})` : '';
}

/**
 * Per mask, the rows' NLL and counts (row m × windows + w) summed in float64 in window order, overall and per
 * cluster: the same additions in the same order whichever evaluator computed the rows, so equal rows give equal
 * sums to the last bit.
 */
export function sumRows(
  masks: readonly string[],
  windows: number,
  perRow: readonly { nll: number; count: number }[],
  clusterOf?: ArrayLike<number>,
): MaskEvaluation[] {
  const clusterCount = clusterOf ? Math.max(...Array.from(clusterOf)) + 1 : 0;
  return masks.map((mask, m) => {
    const result: MaskEvaluation = { mask, nllSum: 0, count: 0 };
    if (clusterCount > 0)
      result.clusters = Array.from({ length: clusterCount }, () => ({ nllSum: 0, count: 0 }));
    for (let w = 0; w < windows; w++) {
      const { nll, count } = perRow[m * windows + w]!;
      result.nllSum += nll;
      result.count += count;
      if (result.clusters) {
        const c = result.clusters[clusterOf![w]!]!;
        c.nllSum += nll;
        c.count += count;
      }
    }
    return result;
  });
}
