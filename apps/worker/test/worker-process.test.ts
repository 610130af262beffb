import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { resolveDataFile, runtimeConfig } from '@evop/config';
import { ArtifactStore, Llama2cTokenizer, readCorpus, windowsFromDocuments } from '@evop/data';
import { discoverLayers, llama2cToOnnx, readLlama2cCheckpoint, readModel, writeModel } from '@evop/onnx';
import { QUEUES, QueueEvaluator, redisConnection } from '@evop/queue';
import { InferencePool, OnnxEvaluator } from '@evop/runtime';
import { Queue, QueueEvents } from 'bullmq';

const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'main.ts');

test('a worker process evaluates fitness tasks from the queue as the local evaluator does, and stops on SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'evop-worker-test-'));
  const store = new ArtifactStore(join(dir, 'artifacts'));
  const modelPath = join(dir, 'model.onnx');
  writeModel(llama2cToOnnx(readLlama2cCheckpoint(resolveDataFile('stories260K/stories260K.bin'))), modelPath);
  const modelSha256 = store.put(readFileSync(modelPath));
  const tokenizer = Llama2cTokenizer.fromFile(resolveDataFile('stories260K/tok512.bin'));
  const windows = windowsFromDocuments(
    readCorpus(resolveDataFile('tinystories-valid-sample/tinystories_val.txt')),
    tokenizer,
    64,
    8,
  );
  const windowsSha256 = store.put(windows.serialize());

  const prefix = `evop-test-${randomBytes(4).toString('hex')}`;
  const child = spawn(process.execPath, ['--import', 'tsx', main], {
    env: {
      ...process.env,
      EVOP_QUEUE_PREFIX: prefix,
      EVOP_ARTIFACT_DIR: store.dir,
      EVOP_PROVIDER: 'cpu',
      EVOP_EVAL_THREADS: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const connections = [redisConnection(), redisConnection()];
  const queue = new Queue(QUEUES.fitness, { connection: connections[0]!, prefix });
  const events = new QueueEvents(QUEUES.fitness, { connection: connections[1]!, prefix });
  const pool = new InferencePool({ config: runtimeConfig({ EVOP_PROVIDER: 'cpu' }) });
  try {
    await events.waitUntilReady();
    const evaluator = new QueueEvaluator({
      queue,
      events,
      task: { jobId: 'job-w', modelSha256, windowsSha256, granularity: 'layer' },
      masksPerTask: 2,
    });
    const candidates = ['11111', '10111', '11011', '01111'].flatMap((mask) => [
      { mask, fidelity: 1 },
      { mask, fidelity: 0.5 },
    ]);
    const remote = await evaluator.evaluate(candidates);

    const model = readModel(modelPath);
    const local = await OnnxEvaluator.create({
      pool,
      model,
      layout: discoverLayers(model.proto),
      granularity: 'layer',
      cacheDir: join(dir, 'local'),
    });
    const masks = ['11111', '10111', '11011', '01111'];
    const full = await local.evaluate(masks, windows);
    const half = await local.evaluate(masks, windows.select([0, 1, 2, 3]));
    const expected = masks.flatMap((_, i) => [
      { nllSum: full[i]!.nllSum, count: full[i]!.count },
      { nllSum: half[i]!.nllSum, count: half[i]!.count },
    ]);
    assert.deepEqual(remote, expected);
  } finally {
    child.kill('SIGTERM');
    assert.equal(await exited, 0, output);
    await queue.obliterate({ force: true });
    await queue.close();
    await events.close();
    await pool.close();
    await Promise.all(connections.map((c) => c.quit()));
  }
  assert.match(output, /evop worker ready/);
});
