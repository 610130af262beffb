import { PrismaPg } from '@prisma/adapter-pg';
import type { PrismaConfig } from 'prisma';
import { connectionOptions, RemappingClient } from './packages/db/src/connection.ts';

/** Prisma 6.19 without a native engine: the JS engine through adapter-pg, so migrations run offline. */
export default {
  experimental: { adapter: true },
  engine: 'js',
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  // allowExitOnIdle: idle pooled connections would otherwise keep the CLI alive for 10 s after it is done.
  adapter: async () =>
    new PrismaPg({ ...connectionOptions(), Client: RemappingClient, allowExitOnIdle: true } as never),
} satisfies PrismaConfig;
