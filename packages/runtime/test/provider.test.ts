import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { ConfigError, runtimeConfig } from '@evop/config';
import { InferencePool, ProviderUnavailableError } from '../src/index.ts';
import { modelFile } from './helpers.ts';

test('EVOP_PROVIDER=cuda on a machine without CUDA fails at the first model, saying so', async () => {
  const pool = new InferencePool({ config: runtimeConfig({ EVOP_PROVIDER: 'cuda' }) });
  try {
    await assert.rejects(pool.load(modelFile('stories260K/stories260K.bin').path), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.equal(err.name, ProviderUnavailableError.name);
      assert.match(err.message, /EVOP_PROVIDER=cuda, but onnxruntime's CUDA provider did not load/);
      assert.match(err.message, /ONNXRUNTIME_NODE_INSTALL=cuda12/);
      return true;
    });
  } finally {
    await pool.close();
  }
});

test('EVOP_PROVIDER=auto falls back to CPU with exactly one warning', async () => {
  const warnings: string[] = [];
  const config = runtimeConfig({ EVOP_PROVIDER: 'auto', EVOP_EVAL_THREADS: '2' });
  const pool = new InferencePool({ config, warn: (m) => warnings.push(m) });
  try {
    const [a, b] = await Promise.all([
      pool.load(modelFile('stories260K/stories260K.bin').path),
      pool.load(modelFile('stories-deep16/stories-deep16.bin').path),
    ]);
    assert.equal(a.provider, 'cpu');
    assert.equal(b.provider, 'cpu');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /CUDA provider unavailable .*running on CPU/);
  } finally {
    await pool.close();
  }
});

test('invalid runtime settings name the variable', () => {
  assert.throws(
    () => runtimeConfig({ EVOP_PROVIDER: 'tpu' }),
    (e: unknown) => e instanceof ConfigError && /^EVOP_PROVIDER="tpu" is invalid/.test(e.message),
  );
  assert.throws(() => runtimeConfig({ EVOP_EVAL_THREADS: '0' }), /EVOP_EVAL_THREADS="0" is invalid/);
  assert.deepEqual(
    { ...runtimeConfig({ EVOP_PROVIDER: 'cpu', EVOP_EVAL_THREADS: '2', EVOP_MAX_BATCH_TOKENS: '512' }) },
    {
      provider: 'cpu',
      deviceId: 0,
      evalThreads: 2,
      intraOpThreads: Math.max(1, Math.floor(availableParallelism() / 2)),
      graphOptimization: 'all',
      maxBatchTokens: 512,
      prepack: false,
      latencyMaxSeconds: 20,
      evaluator: 'gated',
      trieCacheBytes: 512 * 2 ** 20,
    },
  );
  assert.throws(() => runtimeConfig({ EVOP_PREPACK: 'yes' }), /EVOP_PREPACK="yes" is invalid/);
});
