/** A median with the interval that holds the true median at the stated confidence. */
export interface Estimate {
  median: number;
  low: number;
  high: number;
}

/** How a pruned model's speed compares with the dense one's: decided only when the ratio's interval excludes 1. */
export type Verdict = 'faster' | 'slower' | 'inconclusive';

/**
 * How many order statistics to drop from each end of n sorted samples for an interval of their median at
 * `confidence`: the largest k with 2·P(B < k) ≤ 1 − confidence, B ~ Binomial(n, ½) (each sample falls below the
 * true median with probability ½). 0 when n is too small for any interval at that confidence.
 */
function ranksOutside(n: number, confidence: number): number {
  const tail = (1 - confidence) / 2;
  // P(B = j), accumulated in log space: ½ⁿ underflows beyond n ≈ 1074.
  let logPmf = n * Math.log(0.5);
  let below = 0;
  let k = 0;
  while (k < n / 2) {
    below += Math.exp(logPmf); // P(B ≤ k)
    if (below > tail) break;
    k++;
    logPmf += Math.log((n - k + 1) / k);
  }
  return k;
}

function median(sorted: number[]): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The sample median and a distribution-free interval for the true median (the order statistics the binomial
 * sign-test gives: exact for any continuous distribution of independent samples, no resampling); null when there
 * are too few samples for one.
 */
export function medianInterval(samples: readonly number[], confidence = 0.95): Estimate | null {
  const sorted = [...samples].sort((a, b) => a - b);
  const k = ranksOutside(sorted.length, confidence);
  if (k === 0) return null;
  return { median: median(sorted), low: sorted[k - 1]!, high: sorted[sorted.length - k]! };
}

/** Whether the interval's half-width is at most `precision` of its median (0.02: within ±2 %). */
export function isTight(estimate: Estimate, precision: number): boolean {
  return (estimate.high - estimate.low) / 2 <= precision * Math.abs(estimate.median);
}

/** `faster` / `slower` when a speed ratio's interval lies wholly above / below 1, else `inconclusive`. */
export function verdictOf(ratio: Estimate): Verdict {
  if (ratio.low > 1) return 'faster';
  if (ratio.high < 1) return 'slower';
  return 'inconclusive';
}
