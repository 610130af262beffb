import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, serviceConfig, UserError } from '../src/index.ts';

test('every service setting comes from the one schema: defaults, and a bad value named with the reason', () => {
  const config = serviceConfig({ EVOP_WORKER_ID: 'gpu-7', EVOP_MASKS_PER_TASK: '16' });
  assert.equal(config.workerId, 'gpu-7');
  assert.equal(config.masksPerTask, 16);
  assert.equal(config.coordinatorConcurrency, 8);
  assert.equal(config.coordinatorLockMs, 30_000);
  assert.equal(config.workerLockMs, 60_000);
  assert.equal(config.shutdownMs, 60_000);
  for (const [name, value] of [
    ['EVOP_MASKS_PER_TASK', 'eight'],
    ['EVOP_COORDINATOR_LOCK_MS', '-1'],
    ['EVOP_SHUTDOWN_MS', '1.5'],
  ] as const)
    assert.throws(
      () => serviceConfig({ [name]: value }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err instanceof UserError &&
        err.message.startsWith(`${name}="${value}" is invalid: `),
      name,
    );
});
