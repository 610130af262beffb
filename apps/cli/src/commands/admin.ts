import { serviceConfig } from '@evop/config';
import { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import { type RawOptions, run, serviceModule } from '../command.ts';

/** `evop admin create-key --tenant NAME`: a new API key (printed once; only its hash is kept). */
async function createKey(options: RawOptions): Promise<number> {
  const tenant = typeof options.tenant === 'string' ? options.tenant.trim() : '';
  if (!tenant) throw new CliError('--tenant: required (the tenant the key belongs to; created if new)');
  const { createApiKey, openDatabase } = await serviceModule(() => import('@evop/db'));
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

export function adminCommand(): Command {
  const admin = new Command('admin').summary("manage the service's API keys (talks to its database)");
  admin
    .command('create-key')
    .description('create an API key for a tenant (printed once on stdout; only its sha256 is stored)')
    .option('--tenant <name>', 'required: the tenant the key belongs to (created if new)')
    .action(run(async (_args, options) => createKey(options)));
  return admin;
}
