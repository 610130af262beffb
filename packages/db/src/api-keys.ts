import { createHash, randomBytes } from 'node:crypto';
import type { Database } from './database.ts';

/** What is stored of a key: its sha256 (a leaked table gives no usable key). */
export const hashApiKey = (key: string) => createHash('sha256').update(key).digest('hex');

/**
 * A new API key for a tenant (created when missing). The key is returned once and never stored; its first
 * characters are kept as `prefix` so a user can tell keys apart.
 */
export async function createApiKey(
  db: Database,
  tenantName: string,
): Promise<{ key: string; tenantId: string; prefix: string }> {
  const tenant = await db.tenant.upsert({
    where: { name: tenantName },
    create: { name: tenantName },
    update: {},
  });
  const key = `evop_${randomBytes(24).toString('base64url')}`;
  const prefix = key.slice(0, 9);
  await db.apiKey.create({ data: { tenantId: tenant.id, prefix, hash: hashApiKey(key) } });
  return { key, tenantId: tenant.id, prefix };
}

/** The tenant of a key, or undefined for an unknown or revoked one. */
export async function tenantOfKey(db: Database, key: string): Promise<string | undefined> {
  const row = await db.apiKey.findUnique({ where: { hash: hashApiKey(key) } });
  return row && !row.revokedAt ? row.tenantId : undefined;
}
