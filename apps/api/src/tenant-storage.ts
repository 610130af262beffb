import type { Database, Transaction } from '@evop/db';
import type { ApiDeps } from './deps.ts';
import { ApiError } from './problem.ts';

/**
 * A tenant's storage quota (EVOP_TENANT_MAX_BYTES): the bytes of its models' files and datasets. An upload may
 * stream at most what is left (and at most EVOP_MAX_UPLOAD_BYTES); the sum is checked again as it is kept.
 */
export function tenantStorage(deps: ApiDeps) {
  const { tenantMaxBytes: quota, maxUploadBytes } = deps.config;
  const used = async (db: Database | Transaction, tenantId: string) => {
    const [models, datasets] = await Promise.all([
      db.model.aggregate({ where: { tenantId }, _sum: { bytes: true } }),
      db.dataset.aggregate({ where: { tenantId }, _sum: { bytes: true } }),
    ]);
    return Number(models._sum.bytes ?? 0n) + Number(datasets._sum.bytes ?? 0n);
  };
  const overQuota = (field: string, left: number) =>
    new ApiError(
      413,
      'Content Too Large',
      `${field}: the tenant's storage quota of ${quota} bytes (EVOP_TENANT_MAX_BYTES) has ${Math.max(0, left)} ` +
        'bytes left; delete models or datasets to make room',
    );
  return {
    /** What the next upload may stream, and the error for going over it. */
    async room(tenantId: string) {
      const left = quota - (await used(deps.db, tenantId));
      return {
        bytes: Math.max(0, Math.min(maxUploadBytes, left)),
        tooLarge: (field: string) =>
          left < maxUploadBytes
            ? overQuota(field, left)
            : new ApiError(413, 'Content Too Large', `${field}: the upload is over ${maxUploadBytes} bytes`),
      };
    },
    async ensureRoom(tx: Transaction, tenantId: string, field: string, bytes: number) {
      const left = quota - (await used(tx, tenantId));
      if (bytes > left) throw overQuota(field, left);
    },
  };
}
