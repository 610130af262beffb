import type { Database } from '@evop/db';

/**
 * Notes an artifact of the store in the Artifact table (what it is, how big), so that the store can be
 * accounted for and collected; the file itself is the store's.
 */
export async function recordArtifact(
  db: Database,
  sha256: string,
  kind: string,
  bytes: number,
): Promise<void> {
  // createMany skips an existing row inside PostgreSQL: two uploads of one artifact at once do not collide.
  await db.artifact.createMany({
    data: [{ sha256, kind, bytes: BigInt(bytes), path: `${sha256.slice(0, 2)}/${sha256}` }],
    skipDuplicates: true,
  });
}
