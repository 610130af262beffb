export { connectionOptions } from './connection.ts';
export { type Database, openDatabase } from './database.ts';
export { PostgresFitnessCache } from './postgres-fitness-cache.ts';
export { createTestDatabase, type TestDatabase } from './test-database.ts';
