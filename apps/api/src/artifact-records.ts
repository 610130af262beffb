import type { Database, Transaction } from '@evop/db';

// One advisory lock (per database) between garbage collection and what keeps artifacts: 'evop' + 1.
const ARTIFACTS_LOCK = 0x65766f7001;

/**
 * Notes an artifact of the store in the Artifact table (what it is, how big, used now), so that the store can be
 * accounted for and collected; the file itself is the store's.
 */
export async function recordArtifact(
  db: Database | Transaction,
  sha256: string,
  kind: string,
  bytes: number,
): Promise<void> {
  // Inside PostgreSQL, so that two uploads of one artifact at once do not collide.
  await db.$executeRaw`
    INSERT INTO "Artifact" ("sha256", "kind", "bytes", "path")
    VALUES (${sha256}, ${kind}, ${BigInt(bytes)}, ${`${sha256.slice(0, 2)}/${sha256}`})
    ON CONFLICT ("sha256") DO UPDATE SET "usedAt" = CURRENT_TIMESTAMP`;
}

/**
 * Runs `fn` in a transaction that garbage collection waits for: files moved into the store there and the rows
 * naming them commit before a collection can see the files as unused. Many may hold it at once.
 */
export function keepingArtifacts<T>(db: Database, fn: (tx: Transaction) => Promise<T>): Promise<T> {
  return db.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock_shared(${ARTIFACTS_LOCK})`;
    return fn(tx);
  });
}

/** Runs `fn` in a transaction that no `keepingArtifacts` overlaps: a collection's sweep. */
export function collectingArtifacts<T>(db: Database, fn: (tx: Transaction) => Promise<T>): Promise<T> {
  return db.$transaction(
    async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${ARTIFACTS_LOCK})`;
      return fn(tx);
    },
    { timeout: 120_000 },
  );
}
