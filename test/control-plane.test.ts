import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The native libraries a fresh Node process has loaded after importing `modules`. */
function nativeLibrariesAfter(modules: string[]): string[] {
  const script = `
    for (const m of ${JSON.stringify(modules)}) await import(m);
    console.log(JSON.stringify(process.report.getReport().sharedObjects));
  `;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as string[];
}

test('the API and the coordinator never load onnxruntime; a worker does', () => {
  const onnxruntime = (libs: string[]) => libs.filter((l) => /onnxruntime/.test(l));
  const controlPlane = nativeLibrariesAfter([
    `${root}apps/api/src/app.ts`,
    `${root}apps/coordinator/src/prune-processor.ts`,
  ]);
  assert.deepEqual(onnxruntime(controlPlane), []);
  // The check sees the binding where it is loaded: a worker's evaluator pool.
  const worker = nativeLibrariesAfter([`${root}apps/worker/src/fitness-processor.ts`]);
  assert.ok(onnxruntime(worker).length > 0, 'a worker loads onnxruntime');
});
