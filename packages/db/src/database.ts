import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/client.ts';
import { connectionOptions } from './connection.ts';

export type Database = PrismaClient;
/** The client inside `db.$transaction(async (tx) => …)`. */
export type Transaction = Parameters<Parameters<Database['$transaction']>[0]>[0];

/** A Prisma client on the JS engine through adapter-pg (no native engine to download). */
export function openDatabase(url = process.env.DATABASE_URL): Database {
  return new PrismaClient({ adapter: new PrismaPg(connectionOptions(url)) });
}
