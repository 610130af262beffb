import type { Candidate, EvaluationResult } from './evaluation.ts';

/**
 * Results remembered by candidate (fidelity and mask); a cache instance belongs to one model and one set of
 * calibration windows, which is what makes its keys enough. The service keeps it in PostgreSQL.
 */
export interface FitnessCache {
  get(candidates: readonly Candidate[]): Promise<(EvaluationResult | undefined)[]>;
  set(entries: readonly { candidate: Candidate; result: EvaluationResult }[]): Promise<void>;
}

export function cacheKey(candidate: Candidate): string {
  return `${candidate.fidelity}/${candidate.mask}`;
}

export class MemoryFitnessCache implements FitnessCache {
  private readonly entries = new Map<string, EvaluationResult>();

  async get(candidates: readonly Candidate[]): Promise<(EvaluationResult | undefined)[]> {
    return candidates.map((c) => this.entries.get(cacheKey(c)));
  }

  async set(entries: readonly { candidate: Candidate; result: EvaluationResult }[]): Promise<void> {
    for (const { candidate, result } of entries) this.entries.set(cacheKey(candidate), result);
  }

  get size(): number {
    return this.entries.size;
  }
}
