import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const shutdown = fileURLToPath(new URL('../src/shutdown.ts', import.meta.url));
const logger = fileURLToPath(new URL('../src/logger.ts', import.meta.url));

/** A process with a stop step that never finishes (a queue client stuck reconnecting), told to stop. */
function stuckProcess(): Promise<{ code: number | null; lines: Record<string, unknown>[] }> {
  const script = `
    import { stopOnSignals } from ${JSON.stringify(shutdown)};
    import { createLogger } from ${JSON.stringify(logger)};
    const ran = [];
    stopOnSignals(createLogger('probe', 'info'), [
      { name: 'never ends', run: () => new Promise(() => {}), timeoutMs: 300 },
      { name: 'fails', run: async () => { throw new Error('connection reset'); } },
      { name: 'after', run: async () => console.log(JSON.stringify({ msg: 'after ran' })) },
    ]);
    setInterval(() => {}, 1000); // a live handle, as a process with open connections has
    console.log(JSON.stringify({ msg: 'ready' }));
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Record<string, unknown>[] = [];
  let buffer = '';
  child.stdout.on('data', (chunk) => {
    buffer += chunk;
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      const line = JSON.parse(buffer.slice(0, i)) as Record<string, unknown>;
      buffer = buffer.slice(i + 1);
      lines.push(line);
      if (line.msg === 'ready') child.kill('SIGTERM');
    }
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, lines })));
}

test('a process told to stop exits 0 even when a stop step hangs or fails, naming the step it skipped', async () => {
  const { code, lines } = await stuckProcess();
  assert.equal(code, 0);
  // Both are named (pino's lines of one process may reach the pipe in either order under load).
  const warned = lines
    .filter((l) => l.level === 40)
    .map((l) => [l.step, l.msg])
    .sort((a, b) => String(b[0]).localeCompare(String(a[0])));
  assert.deepEqual(warned, [
    ['never ends', 'shutdown step did not finish in time; going on'],
    ['fails', 'shutdown step failed; going on'],
  ]);
  assert.ok(
    lines.some((l) => l.msg === 'after ran'),
    'the steps after a stuck one still run',
  );
});
