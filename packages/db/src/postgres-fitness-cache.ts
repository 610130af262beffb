import type { Candidate, EvaluationResult, FitnessCache } from '@evop/core';
import type { Database } from './database.ts';

/**
 * The fitness cache in PostgreSQL, shared across jobs: rows keyed by (model sha256, evaluation-set sha256,
 * fidelity, mask) and written once, so a retried or duplicated evaluation changes nothing.
 */
export class PostgresFitnessCache implements FitnessCache {
  constructor(
    private readonly db: Database,
    private readonly modelSha256: string,
    private readonly windowsSha256: string,
  ) {}

  async get(candidates: readonly Candidate[]): Promise<(EvaluationResult | undefined)[]> {
    if (candidates.length === 0) return [];
    const rows = await this.db.evaluation.findMany({
      where: {
        modelSha256: this.modelSha256,
        windowsSha256: this.windowsSha256,
        OR: candidates.map((c) => ({ fidelity: c.fidelity, mask: c.mask })),
      },
    });
    const byKey = new Map(rows.map((r) => [`${r.fidelity}/${r.mask}`, r]));
    return candidates.map((c) => {
      const row = byKey.get(`${c.fidelity}/${c.mask}`);
      return row ? (JSON.parse(row.result) as EvaluationResult) : undefined;
    });
  }

  async set(entries: readonly { candidate: Candidate; result: EvaluationResult }[]): Promise<void> {
    if (entries.length === 0) return;
    await this.db.evaluation.createMany({
      data: entries.map(({ candidate, result }) => ({
        modelSha256: this.modelSha256,
        windowsSha256: this.windowsSha256,
        fidelity: candidate.fidelity,
        mask: candidate.mask,
        result: JSON.stringify(result),
      })),
      skipDuplicates: true,
    });
  }
}
