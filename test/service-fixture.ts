import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Stack } from '@evop/cli';
import { resolveDataFile } from '@evop/config';
import { createApiKey, createTestDatabase, type TestDatabase } from '@evop/db';
import { encodeModel, llama2cToOnnx, readLlama2cCheckpoint, readModel, writeModel } from '@evop/onnx';
import type { PruneReport } from '@evop/pipeline';
import { QUEUES, redisConnection } from '@evop/queue';
import { Queue } from 'bullmq';
import { ServiceClient } from './service-client.ts';

export const data = {
  model: resolveDataFile('stories260K-onnx-hfstyle/model.onnx'),
  tokenizer: resolveDataFile('stories260K-onnx-hfstyle/tok512.bin'),
  stories: resolveDataFile('tinystories-valid-sample/tinystories_val.txt'),
};

// onnxruntime's parallel reductions round differently with another number of intra-op threads: the numbers of
// a local run and the service's are the same to the last bit when both run with the same runtime settings.
// Latency rounds stop after 1 s a phase (20 s by default): enough rounds for an interval, whatever its width.
export const RUNTIME = {
  EVOP_PROVIDER: 'cpu',
  EVOP_EVAL_THREADS: '1',
  EVOP_INTRA_OP_THREADS: '1',
  EVOP_LATENCY_MAX_SECONDS: '1',
};

export interface Service {
  dir: string;
  db: TestDatabase;
  stack: Stack;
  prefix: string;
  /** A client with a new API key of `tenant`. */
  client(tenant: string): Promise<ServiceClient>;
  /** Names of processes a test killed on purpose (their exit code is not checked). */
  killed: Set<string>;
  /** Stops every process (asserting each exited 0 on SIGTERM), removes the queues, the keys and the database. */
  close(): Promise<void>;
}

/**
 * The service as separate processes (api, coordinator, workers) on a database and a Redis key prefix of the
 * test's own.
 */
export async function startService(workers: number, env: NodeJS.ProcessEnv = {}): Promise<Service> {
  const dir = mkdtempSync(join(tmpdir(), 'evop-service-test-'));
  const prefix = `evop-test-${randomBytes(4).toString('hex')}`;
  const db = await createTestDatabase();
  const stack = await Stack.start({
    workers,
    port: 0,
    migrate: false,
    dataDir: join(dir, 'stack'),
    env: {
      DATABASE_URL: db.url,
      EVOP_QUEUE_PREFIX: prefix,
      ...RUNTIME,
      EVOP_COORDINATOR_LOCK_MS: '3000',
      EVOP_WORKER_LOCK_MS: '3000',
      EVOP_SHUTDOWN_MS: '20000',
      HOST: '127.0.0.1',
      LOG_LEVEL: process.env.EVOP_TEST_LOG_LEVEL ?? 'warn',
      ...env,
    },
    onLine: () => {},
  });
  const killed = new Set<string>();
  return {
    dir,
    db,
    stack,
    prefix,
    killed,
    client: async (tenant) => new ServiceClient(stack.apiUrl, (await createApiKey(db.db, tenant)).key),
    async close() {
      // A process that does not exit on SIGTERM fails the file within 90 s, named with its last log lines,
      // instead of holding the suite until its timeout.
      const stopped = stack.stop().then(() => true);
      const inTime = await Promise.race([stopped, new Promise<false>((r) => setTimeout(r, 90_000, false))]);
      const hung = inTime
        ? []
        : stack.processes.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
      for (const p of hung) p.child.kill('SIGKILL');
      const codes = await Promise.all(
        stack.processes.filter((p) => !killed.has(p.name)).map((p) => p.exited),
      );
      await removeRedisKeys(prefix);
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
      assert.deepEqual(
        hung.map((p) => `${p.name}:\n${p.tail.join('\n')}`),
        [],
        'every process exited within 90 s of SIGTERM',
      );
      assert.deepEqual(
        codes,
        codes.map(() => 0),
        'every process stopped cleanly on SIGTERM',
      );
    },
  };
}

/** Removes a test's queues and every other Redis key under its prefix (events, worker registry). */
export async function removeRedisKeys(prefix: string): Promise<void> {
  for (const name of Object.values(QUEUES)) {
    const connection = redisConnection();
    const q = new Queue(name, { connection, prefix });
    await q.obliterate({ force: true });
    await q.close();
    await connection.quit();
  }
  const redis = redisConnection();
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
}

/** An ONNX model with its external data (`<model>.data`, when there) and tokenizer files, uploaded; returns its id. */
export async function uploadModel(
  api: ServiceClient,
  name: string,
  path: string,
  tokenizer = [data.tokenizer],
): Promise<string> {
  const files: Record<string, string[]> = { model: [path], tokenizer };
  if (existsSync(`${path}.data`)) files.data = [`${path}.data`];
  const model = await api.upload('/v1/models', { name }, files);
  assert.equal(model.status, 201, JSON.stringify(model.json));
  return model.json.id as string;
}

/** The TinyStories sample, uploaded; returns its id. */
export async function uploadStories(api: ServiceClient): Promise<string> {
  const dataset = await api.upload('/v1/datasets', { name: 'tinystories' }, { file: [data.stories] });
  assert.equal(dataset.status, 201, JSON.stringify(dataset.json));
  return dataset.json.id as string;
}

/** The stories260K model and the TinyStories sample, uploaded. */
export async function uploadFixtures(api: ServiceClient): Promise<{ modelId: string; datasetId: string }> {
  return { modelId: await uploadModel(api, 'stories260K', data.model), datasetId: await uploadStories(api) };
}

const evopBin = fileURLToPath(new URL('../bin/evop.js', import.meta.resolve('@evop/cli')));

/** The spec the service tests submit, and the same as `evop prune` flags (seed and --baselines apart). */
export const SMALL_SPEC = {
  target: { units: 2 },
  granularity: 'sublayer',
  budget: 60,
  calibration: 8,
  heldOut: 8,
  seqLen: 64,
};

/** `evop prune` with `args` in its own process, writing to `out`; returns its report. */
export async function runEvopPrune(
  args: string[],
  out: string,
  env: NodeJS.ProcessEnv = RUNTIME,
): Promise<PruneReport> {
  await promisify(execFile)(process.execPath, [evopBin, 'prune', ...args, '--quiet', '--out', out], {
    env: { ...process.env, ...env },
  });
  return JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as PruneReport;
}

/**
 * `evop prune` with SMALL_SPEC (removing `remove` units) on a model and its tokenizer (default: the fixture's);
 * returns its report.
 */
export function evopPrune(
  out: string,
  extra: string[],
  source = { model: data.model, tokenizer: [data.tokenizer] },
  remove: number = SMALL_SPEC.target.units,
): Promise<PruneReport> {
  const files = ['--model', source.model, '--tokenizer', source.tokenizer[0]!, '--data', data.stories];
  const spec = [
    '--remove',
    String(remove),
    '--granularity',
    'sublayer',
    '--budget',
    '60',
    '--calibration',
    '8',
  ];
  return runEvopPrune([...files, ...spec, '--held-out', '8', '--seq-len', '64', ...extra], out);
}

/** Asserts that a service job and `evop prune` searched alike: the same mask and history, to the last bit. */
export function assertSameSearch(report: PruneReport, local: PruneReport): void {
  assert.equal(report.result.mask, local.result.mask);
  assert.deepEqual(
    report.searches[0]!.history,
    local.searches[0]!.history,
    'no evaluation lost or counted twice',
  );
}

/** Waits (up to `timeoutMs`) for a job to end, asserts it succeeded, and returns its report. */
export async function finishedReport(
  api: ServiceClient,
  id: string,
  timeoutMs = 300_000,
): Promise<PruneReport> {
  const job = await api.waitFor(id, (j) => j.status === 'succeeded' || j.status === 'failed', timeoutMs);
  assert.equal(job.status, 'succeeded', String(job.error));
  return (await api.request('GET', `/v1/jobs/${id}/report.json`)).json as PruneReport;
}

/**
 * Asserts that a service job with SMALL_SPEC and `seed` ended as an undisturbed `evop prune` run: the same mask,
 * the same search history to the last bit (nothing lost or counted twice) and the same held-out perplexities.
 */
export async function assertUndisturbed(service: Service, report: PruneReport, seed: number): Promise<void> {
  const local = await evopPrune(join(service.dir, `local-${seed}`), ['--seed', String(seed)]);
  assertSameSearch(report, local);
  assert.deepEqual(
    report.table.map((r) => r.perplexity),
    local.table.map((r) => r.perplexity),
  );
}

/** stories-deep16 converted to ONNX and uploaded: a model whose searches run long enough to interrupt. */
export async function uploadDeep16(service: Service, api: ServiceClient): Promise<string> {
  const path = join(service.dir, 'deep16.onnx');
  writeModel(
    llama2cToOnnx(readLlama2cCheckpoint(resolveDataFile('stories-deep16/stories-deep16.bin'))),
    path,
  );
  return uploadModel(api, 'deep16', path);
}

/**
 * A copy of an ONNX model in `dir` with every initializer of 1 KiB or more in `model.onnx.data`, placed after a
 * hole of `hole` bytes: a sparse data file as large as a real model's that takes no disk until written out.
 * Returns the .onnx path.
 */
export function writeSparseExternal(source: string, dir: string, hole: number): string {
  const path = join(dir, 'model.onnx');
  mkdirSync(dir, { recursive: true });
  writeModel(readModel(source).proto, path, { externalData: 'external' });
  const { proto } = readModel(path);
  const data = readFileSync(`${path}.data`);
  const base = Math.ceil(hole / 4096) * 4096;
  const fd = openSync(`${path}.data`, 'w');
  writeSync(fd, data, 0, data.length, base);
  closeSync(fd);
  for (const tensor of proto.graph.initializer)
    for (const entry of tensor.externalData) {
      if (entry.key === 'offset') entry.value = String(base + Number(entry.value));
      if (entry.key === 'location') entry.value = 'model.onnx.data';
    }
  writeFileSync(path, encodeModel(proto));
  return path;
}

/** A 4xx problem document (application/problem+json) whose detail matches `detail`. */
export function assertProblem(
  r: { status: number; type: string; json: { detail?: string } },
  status: number,
  detail: RegExp,
) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.match(r.type, /^application\/problem\+json/);
  assert.match(r.json.detail ?? '', detail);
}
