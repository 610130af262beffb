import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { connectionOptions } from './connection.ts';
import { type Database, openDatabase } from './database.ts';

const prismaScript = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'scripts', 'prisma.sh');

/** The server tests use: EVOP_TEST_DATABASE_URL, else the local PostgreSQL as the role scripts/services.sh makes. */
function serverUrl(): URL {
  return new URL(process.env.EVOP_TEST_DATABASE_URL ?? 'postgresql://evop:evop@127.0.0.1:5432/evop');
}

export interface TestDatabase {
  url: string;
  db: Database;
  /** Disconnects and drops the database. */
  drop(): Promise<void>;
}

/**
 * A database of its own for one test file, migrated with the project's migrations: tests never touch other
 * data on the server.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const server = serverUrl();
  const name = `evop_test_${randomBytes(6).toString('hex')}`;
  const admin = async (sql: string) => {
    const client = new pg.Client(connectionOptions(server.href));
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  const dropDatabase = () => admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin(`CREATE DATABASE "${name}"`);
  const url = new URL(server.href);
  url.pathname = `/${name}`;
  try {
    execFileSync('bash', [prismaScript, 'migrate', 'deploy'], {
      env: { ...process.env, DATABASE_URL: url.href },
      stdio: 'pipe',
    });
  } catch (err) {
    // A failed migration must not leave a database behind on a shared server.
    await dropDatabase();
    throw err;
  }
  const db = openDatabase(url.href);
  return {
    url: url.href,
    db,
    async drop() {
      await db.$disconnect();
      await dropDatabase();
    },
  };
}
