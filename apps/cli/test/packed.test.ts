import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { resolveDataFile } from '@evop/config';
import { tempDir } from './helpers.ts';

const cli = join(dirname(fileURLToPath(import.meta.url)), '..');

test('npm pack gives an evop that installs and runs without the repository, paths from where it is called', () => {
  const work = tempDir();
  const tarball = execFileSync(
    process.execPath,
    [join(cli, 'scripts/pack.mjs'), '--out', join(work, 'dist')],
    {
      encoding: 'utf8',
    },
  ).trim();
  assert.match(tarball, /evop-\d+\.\d+\.\d+\.tgz$/);

  // Installed as a user would, into a prefix of its own (onnxruntime's optional CUDA download skipped: this
  // machine cannot reach it; its CPU build ships in the package).
  const prefix = join(work, 'prefix');
  execFileSync(
    'npm',
    ['install', '-g', '--prefix', prefix, tarball, '--prefer-offline', '--no-audit', '--no-fund'],
    { cwd: work, env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' }, stdio: 'pipe' },
  );
  const bin = join(prefix, 'bin', 'evop');
  assert.ok(existsSync(bin));

  // A user's folder, outside the repository: the model and the corpus named by relative paths.
  const home = join(work, 'user');
  cpSync(dirname(resolveDataFile('stories260K-onnx-hfstyle/model.onnx')), join(home, 'model'), {
    recursive: true,
  });
  copyFileSync(resolveDataFile('tinystories-valid-sample/tinystories_val.txt'), join(home, 'corpus.txt'));
  const evop = (...args: string[]) =>
    spawnSync(bin, args, {
      cwd: home,
      encoding: 'utf8',
      // Only the installed package: nothing of the checkout on any search path.
      env: { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, HOME: home, EVOP_PROVIDER: 'cpu' },
    });

  const version = evop('--version');
  assert.equal(version.status, 0, version.stderr);
  assert.equal(version.stdout.trim(), JSON.parse(readFileSync(join(cli, 'package.json'), 'utf8')).version);
  const help = evop('prune', '--help');
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /--budget <evaluations> +search budget/);

  const inspect = evop('inspect', 'model/model.onnx');
  assert.equal(inspect.status, 0, inspect.stderr);
  assert.match(inspect.stdout, /5 decoder layers/);
  assert.match(inspect.stdout, /model\.layers\.0\.self_attn/);

  const prune = evop(
    ...['prune', '--model', 'model/model.onnx', '--data', 'corpus.txt', '--targets', '2,1'],
    ...['--granularity', 'sublayer', '--budget', '40', '--calibration', '4', '--held-out', '4'],
    ...['--seq-len', '64', '--clusters', '2', '--out', 'run', '--quiet', '--json'],
  );
  assert.equal(prune.status, 0, prune.stderr);
  const result = JSON.parse(prune.stdout);
  assert.equal(result.files.model, join(home, 'run', 'model.onnx'));
  for (const file of ['model.onnx', 'mask.json', 'report.json', 'report.html', 'front/1-units/model.onnx'])
    assert.ok(existsSync(join(home, 'run', file)), file);
  assert.equal(result.result.pruned.length, 2);
  const html = readFileSync(join(home, 'run', 'report.html'), 'utf8');
  assert.match(html, /Chart\.js v\d/, 'chart.js inlined');
  assert.match(html, /function drawFront\(/, 'the front chart inlined');

  // The service is not part of the installed command: it says where it runs instead of failing obscurely.
  const stack = evop('stack');
  assert.equal(stack.status, 2, stack.stderr);
  assert.match(stack.stderr, /runs from a checkout of the repository \(npm run stack\)/);
});
