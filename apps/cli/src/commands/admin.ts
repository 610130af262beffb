import { serviceConfig } from '@evop/config';
import { createApiKey, openDatabase } from '@evop/db';
import { CliError } from '../cli-error.ts';
import type { RawOptions } from '../prune-spec.ts';

/** `evop admin create-key --tenant NAME`: a new API key (printed once; only its hash is kept). */
export async function admin(positionals: string[], options: RawOptions): Promise<number> {
  if (positionals[0] !== 'create-key')
    throw new CliError("admin: the command is 'admin create-key --tenant NAME'");
  const tenant = typeof options.tenant === 'string' ? options.tenant.trim() : '';
  if (!tenant) throw new CliError('--tenant: required (the tenant the key belongs to; created if new)');
  const db = openDatabase(serviceConfig().databaseUrl);
  try {
    const { key, tenantId } = await createApiKey(db, tenant);
    process.stdout.write(`${key}\n`);
    process.stderr.write(`API key for tenant '${tenant}' (${tenantId}); it is not shown again\n`);
    return 0;
  } finally {
    await db.$disconnect();
  }
}
