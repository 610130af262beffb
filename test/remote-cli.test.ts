import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { artifactDirOf } from '@evop/cli';
import { createApiKey } from '@evop/db';
import { readModel, writeModel } from '@evop/onnx';
import { data, type Service, SMALL_SPEC, startService } from './service-fixture.ts';

// `evop remote …` as a user runs it: the real binary in its own process, against the real stack.
const evopBin = fileURLToPath(new URL('../bin/evop.js', import.meta.resolve('@evop/cli')));

let service: Service;
let key: string;
let home: string;
/** The environment of a logged-out user: no EVOP_API_* and an empty config folder. */
let loggedOut: NodeJS.ProcessEnv;
/** The environment of a user with the service in EVOP_API_URL / EVOP_API_KEY. */
let withEnv: NodeJS.ProcessEnv;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `evop remote …`; `lines` sees its stderr line by line while it runs. */
function start(
  args: string[],
  env: NodeJS.ProcessEnv,
  input = '',
  onLine: (line: string) => void = () => {},
) {
  const child = spawn(process.execPath, [evopBin, 'remote', ...args], { cwd: home, env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk;
    for (const line of chunk.toString().split('\n')) if (line) onLine(line);
  });
  child.stdin.end(input);
  const done = new Promise<Ran>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}

const evop = (args: string[], env = withEnv, input = '') => start(args, env, input).done;

/** `evop remote … --json`, asserted to succeed; its JSON. */
async function evopJson<T = Record<string, unknown>>(args: string[], env = withEnv): Promise<T> {
  const r = await evop([...args, '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

/** A GET of the API with the key, as raw bytes. */
async function apiBytes(path: string): Promise<Buffer> {
  const response = await fetch(`${service.stack.apiUrl}${path}`, {
    headers: { authorization: `Bearer ${key}` },
  });
  assert.equal(response.status, 200, path);
  return Buffer.from(await response.arrayBuffer());
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const SPEC_FLAGS = [
  ...['--remove', String(SMALL_SPEC.target.units), '--granularity', SMALL_SPEC.granularity],
  ...['--budget', String(SMALL_SPEC.budget), '--calibration', String(SMALL_SPEC.calibration)],
  ...['--held-out', String(SMALL_SPEC.heldOut), '--seq-len', String(SMALL_SPEC.seqLen)],
];

let modelId: string;
let datasetId: string;
let jobId: string;

before(async () => {
  service = await startService(1);
  key = (await createApiKey(service.db.db, 'remote')).key;
  home = join(service.dir, 'user');
  mkdirSync(home);
  const base = { ...process.env };
  delete base.EVOP_API_URL;
  delete base.EVOP_API_KEY;
  loggedOut = { ...base, XDG_CONFIG_HOME: join(home, 'config') };
  withEnv = { ...loggedOut, EVOP_API_URL: service.stack.apiUrl, EVOP_API_KEY: key };
});
after(() => service?.close());

test('without credentials every command exits 2 saying how to log in', async () => {
  for (const args of [['jobs'], ['status', '00000000-0000-4000-8000-000000000000']]) {
    const r = await evop(args, loggedOut);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(
      r.stderr,
      "evop: not logged in to an evop service: run 'evop remote login --url URL' (or set EVOP_API_URL and EVOP_API_KEY)\n",
    );
  }
});

test('login checks the key, keeps it for the user alone, and later commands use it', async () => {
  const refused = await evop(['login', '--url', service.stack.apiUrl], loggedOut, 'not-a-key\n');
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /^evop: --key: http:\/\/127\.0\.0\.1:\d+ refuses it/);
  const file = join(home, 'config', 'evop', 'credentials.json');
  assert.equal(existsSync(file), false, 'a refused key is not kept');

  const r = await evop(['login', '--url', service.stack.apiUrl], loggedOut, `${key}\n`);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stdout.includes(key) && !r.stderr.includes(key), 'the key is never printed');
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { url: service.stack.apiUrl, key });
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(await evopJson(['jobs'], loggedOut), { jobs: [] });
});

test('uploads: a model with the external data it names and the tokenizer beside it, and a corpus', async () => {
  // The fixture model with its weights in external data, in a folder of its own with its tokenizer.
  const folder = join(home, 'stories260K');
  mkdirSync(folder);
  writeModel(readModel(data.model).proto, join(folder, 'model.onnx'), { externalData: 'external' });
  copyFileSync(data.tokenizer, join(folder, 'tok512.bin'));
  const model = await evopJson<{ id: string; name: string; files: { name: string; sha256: string }[] }>([
    'models',
    'upload',
    join(folder, 'model.onnx'),
  ]);
  assert.equal(model.name, 'stories260K', 'named after its folder');
  assert.deepEqual(
    model.files.map((f) => [f.name, f.sha256]),
    ['model.onnx', 'model.onnx.data'].map((n) => [n, sha256(readFileSync(join(folder, n)))]),
  );
  modelId = model.id;

  const r = await evop(['datasets', 'upload', data.stories, '--name', 'tinystories']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /uploading tinystories_val\.txt/);
  datasetId = r.stdout.trim();
  const listed = await evopJson<{ datasets: { id: string; name: string; sha256: string }[] }>([
    'datasets',
    'list',
  ]);
  assert.deepEqual(
    listed.datasets.map((d) => [d.id, d.name, d.sha256]),
    [[datasetId, 'tinystories', sha256(readFileSync(data.stories))]],
  );
});

test('submit: the spec of the prune flags; the same Idempotency-Key gives the same job; refusals exit 2', async () => {
  const submit = ['submit', '--model', modelId, '--dataset', datasetId, ...SPEC_FLAGS];
  const first = await evopJson<{ id: string; spec: Record<string, unknown> }>([
    ...submit,
    '--idempotency-key',
    'k1',
  ]);
  const again = await evopJson<{ id: string }>([...submit, '--idempotency-key', 'k1']);
  assert.equal(again.id, first.id);
  jobId = first.id;
  assert.deepEqual(
    { target: first.spec.target, granularity: first.spec.granularity, seqLen: first.spec.seqLen },
    { target: SMALL_SPEC.target, granularity: SMALL_SPEC.granularity, seqLen: SMALL_SPEC.seqLen },
  );
  const otherBody = await evop([...submit, '--seed', '7', '--idempotency-key', 'k1']);
  assert.equal(otherBody.code, 2);
  assert.equal(otherBody.stderr, 'evop: 409 Idempotency-Key: already used for a job with another body\n');

  // Past the service's limit: refused by the API, named by its field.
  const tooLong = await evop([...submit.slice(0, -2), '--seq-len', '100000']);
  assert.equal(tooLong.code, 2);
  assert.match(tooLong.stderr, /^evop: 422 spec\.seqLen: .*EVOP_MAX_SEQ_LEN/);
  // Out of the spec's own bounds: refused before anything is sent, naming the flag.
  const noTarget = await evop(submit.filter((a, i) => a !== '--remove' && submit[i - 1] !== '--remove'));
  assert.equal(noTarget.code, 2);
  assert.match(noTarget.stderr, /--remove/);
  const unknown = await evop([
    'submit',
    '--model',
    '00000000-0000-4000-8000-000000000000',
    '--dataset',
    datasetId,
    ...SPEC_FLAGS,
  ]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^evop: 422 modelId: no model '00000000-0000-4000-8000-000000000000'/);
});

test('watch follows the job across an API restart and exits 0 when it succeeds', async () => {
  // A job of its own, just submitted, on windows no other job scored (no fitness-cache hits): still running when the
  // API goes away. (The submit test's job may have ended by now; watch would then only replay it.) It has a front:
  // 3 units, and 2.
  const longer = SPEC_FLAGS.map((a, i) =>
    a === '--remove'
      ? '--targets'
      : SPEC_FLAGS[i - 1] === '--remove'
        ? '3,2'
        : SPEC_FLAGS[i - 1] === '--calibration'
          ? '12'
          : a,
  );
  const fresh = await evopJson<{ id: string }>([
    'submit',
    '--model',
    modelId,
    '--dataset',
    datasetId,
    ...longer,
  ]);
  jobId = fresh.id;
  let restarted: Promise<unknown> | undefined;
  const watching = start(['watch', jobId], withEnv, '', () => {
    // As soon as watch reports: the API goes away and comes back while the client is watching.
    restarted ??= service.stack.restartApi();
  });
  const r = await watching.done;
  await restarted;
  assert.equal(r.code, 0, r.stderr);
  assert.ok(restarted, `the search was seen: ${r.stderr}`);
  assert.match(r.stderr, /reconnecting in/);
  const generations = r.stderr.split('\n').filter((l) => /generation \d+:/.test(l));
  assert.equal(new Set(generations).size, generations.length, 'no generation shown twice after reconnecting');
  assert.match(r.stderr, /succeeded; download it with: evop remote download/);

  const job = await evopJson<{ status: string; result: { pruned: string[] } }>(['status', jobId]);
  assert.equal(job.status, 'succeeded');
  assert.equal(job.result.pruned.length, 3);
  const human = await evop(['status', jobId]);
  assert.match(human.stdout, new RegExp(`^${jobId}  succeeded`));
  assert.match(human.stdout, /\| dense/);
  assert.match(
    human.stdout,
    /quality–speed front:\n\| units pruned .*\n.*\n\| 2 .*front\/2-units\/model\.onnx/,
  );
});

test("download: every file of the result, byte for byte the API's and checked; a corrupt one writes nothing", async () => {
  const out = join(home, 'result');
  const { files } = await evopJson<{ files: { name: string; sha256: string; url: string; path: string }[] }>([
    'download',
    jobId,
    '--out',
    out,
  ]);
  // The source model kept its weights in external data: so does the pruned one, and the front's other point's.
  assert.deepEqual(
    files.map((f) => f.name),
    [
      'model.onnx',
      'model.onnx.data',
      'report.json',
      'report.html',
      'front/2-units/model.onnx',
      'front/2-units/model.onnx.data',
    ],
  );
  for (const file of files) {
    const written = readFileSync(join(out, file.name));
    assert.equal(file.path, join(out, file.name));
    assert.ok(written.equals(await apiBytes(file.url)), `${file.name}: the API's bytes`);
    assert.equal(sha256(written), file.sha256);
  }
  assert.deepEqual(
    readdirSync(out, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => relative(out, join(e.parentPath, e.name)))
      .sort(),
    files.map((f) => f.name).sort(),
    'no staging folder left',
  );
  assert.ok(
    readModel(join(out, 'front', '2-units', 'model.onnx')).proto.graph.initializer.length >
      readModel(join(out, 'model.onnx')).proto.graph.initializer.length,
    'the 2-unit point keeps more weights than the 3-unit target',
  );
  // The files make a model: the .onnx file finds its weights beside it.
  const source = readModel(join(home, 'stories260K', 'model.onnx')).proto.graph.initializer.length;
  assert.ok(readModel(join(out, 'model.onnx')).proto.graph.initializer.length < source, 'pruned weights');

  // The API's stored copy of the pruned model damaged in place, its size and times kept: the API serves it as
  // intact (it hashes again only a file that changed), so the client's own check is what catches it.
  const model = files[0]!;
  const stored = join(
    artifactDirOf(join(service.dir, 'stack'), 'api'),
    model.sha256.slice(0, 2),
    model.sha256,
  );
  const times = join(service.dir, 'times');
  execFileSync('touch', ['-r', stored, times]);
  const original = readFileSync(stored);
  const fd = openSync(stored, 'r+');
  writeSync(fd, Buffer.from([original[100]! ^ 0xff]), 0, 1, 100);
  execFileSync('touch', ['-r', times, stored]);
  try {
    const damaged = join(home, 'damaged');
    const r = await evop(['download', jobId, '--out', damaged]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /^evop: failed: model\.onnx: received \d+ bytes with sha256 [0-9a-f]{64}, the service lists/m,
    );
    assert.deepEqual(readdirSync(damaged), [], 'nothing written, not even a partial file');
  } finally {
    writeSync(fd, original, 100, 1, 100);
    execFileSync('touch', ['-r', times, stored]);
  }
});

test('cancel: the job ends cancelled, watch exits 130, a second cancel and an unknown job exit 2', async () => {
  const submit = ['submit', '--model', modelId, '--dataset', datasetId, ...SPEC_FLAGS, '--seed', '3'];
  const job = await evopJson<{ id: string }>(submit);
  const cancel = await evop(['cancel', job.id]);
  assert.equal(cancel.code, 0, cancel.stderr);
  const watched = await evop(['watch', job.id]);
  assert.equal(watched.code, 130, watched.stderr);
  assert.match(watched.stderr, new RegExp(`evop: job ${job.id} was cancelled`));
  const again = await evop(['cancel', job.id]);
  assert.equal(again.code, 2);
  assert.equal(again.stderr, 'evop: 409 the job has already been cancelled\n');

  const missing = '00000000-0000-4000-8000-000000000000';
  for (const command of ['status', 'watch', 'download', 'cancel']) {
    const r = await evop([command, missing]);
    assert.equal(r.code, 2, `${command}: ${r.stderr}`);
    assert.equal(r.stderr, `evop: 404 job '${missing}' does not exist\n`, command);
  }
});
