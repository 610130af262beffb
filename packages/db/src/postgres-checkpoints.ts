import type { GenerationRecord, SearchCheckpoint, StrategyState } from '@evop/core';
import type { CheckpointStore } from '@evop/pipeline/control';
import type { Database, Transaction } from './database.ts';
import type { PostgresFitnessCache } from './postgres-fitness-cache.ts';

/**
 * A job's search checkpoints as Generation rows: one per generation with its record and the strategy's whole
 * state, so a coordinator that takes over a job continues from the last one. The generation's cache results and
 * `onSaved` (progress, best so far) are written in the same transaction.
 */
export class PostgresCheckpoints implements CheckpointStore {
  constructor(
    private readonly db: Database,
    private readonly jobId: string,
    private readonly options: {
      /** A cache whose deferred results are written with each checkpoint. */
      cache?: PostgresFitnessCache;
      /** Given the search's name: its strategy, or `strategy@units` for a point of a front. */
      onSaved?: (tx: Transaction, search: string, record: GenerationRecord) => Promise<void>;
    } = {},
  ) {}

  async load(strategy: string): Promise<SearchCheckpoint | undefined> {
    const rows = await this.db.generation.findMany({
      where: { jobId: this.jobId, strategy },
      orderBy: { index: 'asc' },
    });
    if (rows.length === 0) return undefined;
    return {
      strategy: JSON.parse(rows.at(-1)!.state) as StrategyState,
      history: rows.map((r) => JSON.parse(r.record) as GenerationRecord),
    };
  }

  async save(strategy: string, checkpoint: SearchCheckpoint): Promise<void> {
    const record = checkpoint.history.at(-1)!;
    const data = { record: JSON.stringify(record), state: JSON.stringify(checkpoint.strategy) };
    await this.db.$transaction(async (tx) => {
      // A generation written twice (a coordinator that died after writing it) holds the same content.
      await tx.generation.upsert({
        where: { jobId_strategy_index: { jobId: this.jobId, strategy, index: checkpoint.history.length } },
        create: { jobId: this.jobId, strategy, index: checkpoint.history.length, ...data },
        update: data,
      });
      await this.options.cache?.flush(tx);
      await this.options.onSaved?.(tx, strategy, record);
    });
  }
}
