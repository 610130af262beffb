/**
 * README.md's service walk-through, run as a reader runs it: `npm run stack` in the repository root (so its
 * relative `stack-data/` folder), then each command of the "## The service" sh block with bash, as written, each
 * step's output checked. The test's own are only the database (DATABASE_URL), the Redis key prefix
 * (EVOP_QUEUE_PREFIX), a free port (PORT=0, given to the block as EVOP_API_URL) and the data folder the resolver
 * finds (EVOP_DATA_DIR), all read through the environment the README's commands already honour.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { artifactDirOf, STACK_DATA_DIR } from '@evop/cli';
import { resolveDataFile } from '@evop/config';
import { ArtifactStore, parseManifest } from '@evop/data';
import { createTestDatabase, type TestDatabase } from '@evop/db';
import { InferenceSession } from 'onnxruntime-node';
import { parseEvent } from './service-client.ts';
import { removeRedisKeys } from './service-fixture.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The first ```sh block after the line `heading`. */
function shBlock(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `README.md has a section '${heading}'`);
  const block = /```sh\n([\s\S]*?)\n```/.exec(markdown.slice(start));
  assert.ok(block, `'${heading}' has a sh block`);
  return block[1]!;
}

/**
 * A script's commands as bash reads them: a newline ends one unless it is escaped, quoted or inside parentheses
 * (`$(…)`). Comments are skipped while scanning, so that a quote or backtick in one does not count.
 */
function shellCommands(script: string): string[] {
  const commands: string[] = [];
  let current = '';
  let quote = '';
  let depth = 0;
  for (let i = 0; i < script.length; i++) {
    const c = script[i]!;
    if (c === '\\' && quote !== "'") {
      current += c + (script[++i] ?? '');
    } else if (quote) {
      if (c === quote) quote = '';
      current += c;
    } else if (c === '#' && (i === 0 || /\s/.test(script[i - 1]!))) {
      while (i + 1 < script.length && script[i + 1] !== '\n') i++;
    } else if (c === '\n' && depth === 0) {
      if (current.trim()) commands.push(current.trim());
      current = '';
    } else {
      if (c === "'" || c === '"') quote = c;
      if (c === '(') depth++;
      if (c === ')') depth--;
      current += c;
    }
  }
  if (current.trim()) commands.push(current.trim());
  return commands;
}

interface Step {
  command: string;
  code: number | null;
  stdout: string;
  stderr: string;
  /** The environment after it: the block's variables included (`set -a` exports every assignment). */
  env: NodeJS.ProcessEnv;
}

/**
 * One command with bash in the repository root, in the environment the commands before it left, so that the
 * block runs as one shell would run it, yet each step's output and exit status stand apart. pipefail makes a
 * failed `curl … | jq` fail the step.
 */
function runStep(command: string, env: NodeJS.ProcessEnv, scratch: string): Promise<Step> {
  const envFile = join(scratch, `env-${randomBytes(4).toString('hex')}`);
  const script = `set -a -o pipefail\ntrap 'env -0 > "$0"' EXIT\n${command}\n`;
  const child = spawn('bash', ['-c', script, envFile], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  return new Promise((resolve) =>
    child.on('close', (code) => {
      const after = existsSync(envFile) ? readFileSync(envFile, 'utf8') : '';
      const entries = after
        .split('\0')
        .filter((e) => e.includes('='))
        .map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]);
      resolve({ command, code, stdout, stderr, env: Object.fromEntries(entries) });
    }),
  );
}

/** The variable a `NAME=$(…)` command assigns, and its value after the step. */
function assigned(step: Step): string {
  const name = /^([A-Za-z_]\w*)=\$\(/.exec(step.command)?.[1];
  assert.ok(name, `'${step.command}' assigns a variable`);
  return step.env[name] ?? '';
}

/** `npm run stack` in its own process group, so that every process it starts can be stopped together. */
class StackRun {
  readonly child: ChildProcess;
  readonly tail: string[] = [];
  private readonly killOnExit = () => this.signal('SIGKILL');

  constructor(env: NodeJS.ProcessEnv) {
    this.child = spawn('npm', ['run', 'stack'], {
      cwd: root,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const input of [this.child.stdout!, this.child.stderr!])
      createInterface({ input }).on('line', (line) => {
        this.tail.push(line);
        if (this.tail.length > 40) this.tail.shift();
        this.child.emit('line', line);
      });
    // A test that dies (its timeout, --test-force-exit) must not leave the stack running.
    process.once('exit', this.killOnExit);
  }

  /** The stack's banner (api URL, worker count), once every process is ready. */
  ready(): Promise<{ apiUrl: string; workers: number }> {
    return new Promise((resolve, reject) => {
      this.child.on('line', (line: string) => {
        const banner = /evop stack: api on (\S+) .* (\d+) workers/.exec(line);
        if (banner) resolve({ apiUrl: banner[1]!, workers: Number(banner[2]) });
      });
      this.child.on('close', (code) =>
        reject(new Error(`npm run stack exited with ${code}:\n${this.tail.join('\n')}`)),
      );
    });
  }

  /** Whether any process of the group is still there. */
  private alive(): boolean {
    try {
      process.kill(-this.child.pid!, 0);
      return true;
    } catch {
      return false;
    }
  }

  private signal(signal: NodeJS.Signals): void {
    if (this.alive()) process.kill(-this.child.pid!, signal);
  }

  /** SIGTERM to the whole group (the stack stops its processes gracefully), SIGKILL to what is left after 60 s. */
  async stop(): Promise<void> {
    this.signal('SIGTERM');
    for (let waited = 0; this.alive() && waited < 60_000; waited += 200)
      await new Promise((r) => setTimeout(r, 200));
    this.signal('SIGKILL');
    process.off('exit', this.killOnExit);
  }
}

interface Context {
  db: TestDatabase;
  workers: number;
  jobId?: string;
}

/**
 * What each step of the walk-through must give, found by what its command does (never by its place in the
 * block); every one must be in the block, so the walk-through keeps going from upload to download.
 */
const checks: {
  name: string;
  command: RegExp;
  /** `again` runs the step's command once more, in the environment it ran in. */
  check(step: Step, ctx: Context, again: () => Promise<Step>): Promise<void> | void;
}[] = [
  {
    name: 'an API key',
    command: /admin create-key/,
    check: (step) => assert.match(assigned(step), /^\S{20,}$/, 'the key is printed, alone'),
  },
  {
    name: 'a model upload',
    command: /\/v1\/models\b/,
    check: (step) => assert.match(assigned(step), UUID),
  },
  {
    name: 'a dataset upload',
    command: /\/v1\/datasets\b/,
    check: (step) => assert.match(assigned(step), UUID),
  },
  {
    name: 'a job submitted with an Idempotency-Key',
    command: /Idempotency-Key/,
    async check(step, ctx, again) {
      ctx.jobId = assigned(step);
      assert.match(ctx.jobId, UUID);
      assert.equal(assigned(await again()), ctx.jobId, 'the same submission again is the same job');
    },
  },
  {
    name: 'a poll',
    command: /\| jq '\{status/,
    check(step) {
      const job = JSON.parse(step.stdout);
      assert.ok(['queued', 'running', 'succeeded'].includes(job.status), step.stdout);
      assert.ok('progress' in job && 'stage' in job && 'best' in job, step.stdout);
    },
  },
  {
    name: 'the SSE stream, until the job ends',
    command: /\/events\b/,
    check(step) {
      const events = step.stdout.split('\n\n').flatMap((block) => parseEvent(block.trim()) ?? []);
      const last = events.at(-1)?.data as { type: string; status: string; error?: string };
      assert.deepEqual([last.type, last.status], ['status', 'succeeded'], String(last.error));
      assert.ok(
        events.some((e) => e.event === 'generation' && e.id),
        'every generation is streamed with its id',
      );
    },
  },
  {
    name: 'the comparison table',
    command: /\.result\.table/,
    check(step) {
      const table = JSON.parse(step.stdout) as { method: string; perplexity: number; params: number }[];
      assert.ok(table.length >= 2, step.stdout);
      const dense = table.find((r) => r.method === 'dense');
      assert.ok(dense, 'the dense model is in the table');
      for (const row of table) assert.ok(Number.isFinite(row.perplexity) && row.perplexity > 1, row.method);
      assert.ok(
        table.filter((r) => r !== dense).every((r) => r.params < dense.params),
        'pruned rows are smaller',
      );
    },
  },
  {
    name: 'the pruned model, downloaded',
    command: /-o \S+ \S*\/artifacts\/model\.onnx/,
    async check(step, ctx) {
      const file = join(root, /-o (\S+)/.exec(step.command)![1]!);
      const session = await InferenceSession.create(file);
      assert.ok(session.inputNames.length > 0 && session.outputNames.length > 0);
      await session.release();
      // The job's listing of its pruned model's files: the manifest its result names, in the API's store.
      const result = await ctx.db.db.result.findUniqueOrThrow({ where: { jobId: ctx.jobId } });
      const store = new ArtifactStore(join(root, artifactDirOf(STACK_DATA_DIR, 'api')));
      const listed = parseManifest(store.read(result.modelManifestSha256)).files.find(
        (f) => f.name === 'model.onnx',
      );
      const sha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
      assert.equal(sha256, listed?.sha256, 'the download is the stored pruned model');
    },
  },
  {
    name: 'report.html, downloaded',
    command: /-o \S+ \S*\/report\.html/,
    check(step) {
      const html = readFileSync(join(root, /-o (\S+)/.exec(step.command)![1]!), 'utf8');
      assert.match(html, /^<!doctype html>/i);
      assert.match(html.trimEnd(), /<\/html>$/);
    },
  },
  {
    name: 'cancel, once the job has ended',
    command: /\/cancel\b/,
    check(step) {
      const problem = JSON.parse(step.stdout);
      assert.equal(problem.status, 409, step.stdout);
      assert.match(problem.detail, /succeeded/, 'the detail says why');
    },
  },
  {
    name: 'the live workers',
    command: /\/v1\/workers\b/,
    check(step, ctx) {
      const { workers } = JSON.parse(step.stdout) as { workers: { id: string; provider: string }[] };
      assert.equal(workers.length, ctx.workers, step.stdout);
      for (const w of workers) assert.ok(w.id && w.provider, JSON.stringify(w));
    },
  },
];

test("README.md's service walk-through runs as written against `npm run stack`", async () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const commands = shellCommands(shBlock(readme, '## The service'));
  // What the block and the stack write in the repository root is removed after; a reader's own is never touched.
  const written = [
    STACK_DATA_DIR,
    ...commands.flatMap((c) => [...c.matchAll(/ -o (\S+)/g)].map((m) => m[1]!)),
  ];
  const present = written.filter((p) => existsSync(join(root, p)));
  assert.deepEqual(present, [], `remove ${present.join(', ')} (left by a stack of yours?) to run this test`);
  // The data folder the resolver finds for every file the block uploads.
  const dataDirs = new Set(
    commands.flatMap((c) =>
      [...c.matchAll(/\$D\/(\S+)/g)].map((m) => resolveDataFile(m[1]!).slice(0, -m[1]!.length - 1)),
    ),
  );
  assert.equal(dataDirs.size, 1, `the block's data files are in one folder: ${[...dataDirs]}`);

  const scratch = mkdtempSync(join(tmpdir(), 'evop-readme-'));
  const prefix = `evop-test-${randomBytes(4).toString('hex')}`;
  const db = await createTestDatabase();
  const stack = new StackRun({
    ...process.env,
    DATABASE_URL: db.url,
    EVOP_QUEUE_PREFIX: prefix,
    EVOP_LATENCY_MAX_SECONDS: '1', // the job's latency rounds: 1 s a phase instead of 20
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.EVOP_TEST_LOG_LEVEL ?? 'warn',
  });
  try {
    const { apiUrl, workers } = await stack.ready();
    let env: NodeJS.ProcessEnv = {
      ...process.env,
      DATABASE_URL: db.url,
      EVOP_API_URL: apiUrl,
      EVOP_DATA_DIR: [...dataDirs][0],
    };
    const ctx: Context = { db, workers };
    const seen = new Set<string>();
    for (const command of commands) {
      const before = env;
      const step = await runStep(command, before, scratch);
      const shown = `${command}\n--- stdout\n${step.stdout.slice(-4000)}\n--- stderr\n${step.stderr.slice(-4000)}`;
      assert.equal(step.code, 0, shown);
      env = step.env;
      for (const { name, check } of checks.filter((c) => c.command.test(command))) {
        seen.add(name);
        try {
          await check(step, ctx, () => runStep(command, before, scratch));
        } catch (err) {
          (err as Error).message = `${name}: ${(err as Error).message}\n${shown}`;
          throw err;
        }
      }
    }
    assert.deepEqual(
      checks.map((c) => c.name).filter((name) => !seen.has(name)),
      [],
      'the walk-through has every step',
    );
  } catch (err) {
    (err as Error).message += `\n--- npm run stack\n${stack.tail.join('\n')}`;
    throw err;
  } finally {
    await stack.stop();
    await removeRedisKeys(prefix);
    await db.drop();
    for (const path of written) rmSync(join(root, path), { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  }
});
