import type { Candidate, EvaluationResult, FitnessCache } from '@evop/core';
import type { Database, Transaction } from './database.ts';

type Entry = { candidate: Candidate; result: EvaluationResult };

/**
 * The fitness cache in PostgreSQL, shared across jobs: rows keyed by (model sha256, evaluation-set sha256,
 * fidelity, mask) and written once, so a retried or duplicated evaluation changes nothing.
 */
export class PostgresFitnessCache implements FitnessCache {
  private pending: Entry[] = [];

  /**
   * With `deferWrites`, results are held until `flush` writes them in the transaction of the checkpoint they
   * belong to: a search that dies between the two never finds its own unsaved generation in the cache, and so
   * never counts it as cache hits when it resumes.
   */
  constructor(
    private readonly db: Database,
    private readonly modelSha256: string,
    private readonly windowsSha256: string,
    private readonly options: { deferWrites?: boolean } = {},
  ) {}

  async get(candidates: readonly Candidate[]): Promise<(EvaluationResult | undefined)[]> {
    if (candidates.length === 0) return [];
    const held = new Map(this.pending.map((e) => [`${e.candidate.fidelity}/${e.candidate.mask}`, e.result]));
    const rows = await this.db.evaluation.findMany({
      where: {
        modelSha256: this.modelSha256,
        windowsSha256: this.windowsSha256,
        // One `mask IN (…)` per fidelity (a generation has one or two) rather than one OR branch per candidate.
        OR: [...new Set(candidates.map((c) => c.fidelity))].map((fidelity) => ({
          fidelity,
          mask: { in: candidates.filter((c) => c.fidelity === fidelity).map((c) => c.mask) },
        })),
      },
    });
    const byKey = new Map(rows.map((r) => [`${r.fidelity}/${r.mask}`, r]));
    return candidates.map((c) => {
      const row = byKey.get(`${c.fidelity}/${c.mask}`);
      return row ? (JSON.parse(row.result) as EvaluationResult) : held.get(`${c.fidelity}/${c.mask}`);
    });
  }

  async set(entries: readonly Entry[]): Promise<void> {
    if (this.options.deferWrites) this.pending.push(...entries);
    else await this.write(this.db, entries);
  }

  /** Writes the deferred results inside `tx`. */
  async flush(tx: Transaction): Promise<void> {
    const entries = this.pending;
    this.pending = [];
    await this.write(tx, entries);
  }

  private async write(db: Database | Transaction, entries: readonly Entry[]): Promise<void> {
    if (entries.length === 0) return;
    await db.evaluation.createMany({
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
