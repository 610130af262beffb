export type { Dataset, Job, Model, Result } from '../generated/client.ts';
export { createApiKey, hashApiKey, tenantOfKey } from './api-keys.ts';
export { connectionOptions } from './connection.ts';
export { type Database, openDatabase, type Transaction } from './database.ts';
export { jobOutbox } from './job-outbox.ts';
export { PostgresCheckpoints } from './postgres-checkpoints.ts';
export { PostgresFitnessCache } from './postgres-fitness-cache.ts';
export { createTestDatabase, type TestDatabase } from './test-database.ts';
export { isUnavailableError } from './unavailable.ts';
