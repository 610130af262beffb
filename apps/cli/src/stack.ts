import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Role = 'api' | 'coordinator' | 'worker';

export interface StackOptions {
  workers: number;
  /** The API's port; 0 picks a free one (default 3000). */
  port?: number;
  /** Environment of every process, over this one's: DATABASE_URL, REDIS_URL, EVOP_QUEUE_PREFIX, … */
  env?: NodeJS.ProcessEnv;
  /** Folder for each process's artifact store or cache (default STACK_DATA_DIR). */
  dataDir?: string;
  /** Each line a process prints (default: to this process's stderr, prefixed with its name). */
  onLine?: (name: string, line: string) => void;
  /** Apply the database migrations first (default true). */
  migrate?: boolean;
}

export interface StackProcess {
  name: string;
  role: Role;
  child: ChildProcess;
  exited: Promise<number | null>;
  /** Its last lines of output. */
  tail: string[];
}

/** Where `npm run stack` keeps its processes' files, relative to the folder it runs in. */
export const STACK_DATA_DIR = 'stack-data';

/** A stack process's artifact folder under `dataDir`: the API's store, a coordinator's or worker's cache. */
export const artifactDirOf = (dataDir: string, name: string) => join(dataDir, name, 'artifacts');

const mainOf = (role: Role) => fileURLToPath(import.meta.resolve(`@evop/${role}/main`));
const prismaScript = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'scripts', 'prisma.sh');

/**
 * The service on one machine without Docker: the API, one coordinator and N workers as separate processes on
 * the local PostgreSQL and Redis, sharing a generated service token. `npm run stack` and the service tests run it.
 */
export class Stack {
  readonly processes: StackProcess[] = [];
  apiUrl = '';
  private readonly env: NodeJS.ProcessEnv;
  private workerCount = 0;

  private constructor(private readonly options: StackOptions) {
    this.env = {
      ...process.env,
      EVOP_SERVICE_TOKEN: randomBytes(24).toString('hex'),
      ...options.env,
    };
  }

  static async start(options: StackOptions): Promise<Stack> {
    const stack = new Stack(options);
    if (options.migrate ?? true)
      execFileSync('bash', [prismaScript, 'migrate', 'deploy'], { env: stack.env, stdio: 'pipe' });
    try {
      const api = stack.spawn('api', 'api', { PORT: String(options.port ?? 3000) });
      const line = await stack.waitFor(api, /evop api listening on (\S+)/);
      stack.apiUrl = line.match(/listening on (\S+)/)![1]!.replace('0.0.0.0', '127.0.0.1');
      await stack.waitFor(stack.spawn('coordinator', 'coordinator'), /evop coordinator ready/);
      await Promise.all(Array.from({ length: options.workers }, () => stack.addWorker()));
    } catch (err) {
      await stack.stop();
      throw err;
    }
    return stack;
  }

  /**
   * Starts one more worker (or one with the name, and so the cache, of a stopped one) and waits until it is ready;
   * `env` adds to or overrides the stack's environment for it.
   */
  async addWorker(name = `worker-${++this.workerCount}`, env: NodeJS.ProcessEnv = {}): Promise<StackProcess> {
    const worker = this.spawn(name, 'worker', { EVOP_WORKER_ID: name, ...env });
    await this.waitFor(worker, /evop worker ready/);
    return worker;
  }

  /** Starts one more coordinator (another one may take over its jobs). */
  async addCoordinator(name: string): Promise<StackProcess> {
    const coordinator = this.spawn(name, 'coordinator');
    await this.waitFor(coordinator, /evop coordinator ready/);
    return coordinator;
  }

  /**
   * Stops the API (SIGTERM) and starts it again on the same port and store, as a deployment does; resolves once it
   * listens again.
   */
  async restartApi(): Promise<StackProcess> {
    const old = this.processes.find(
      (p) => p.role === 'api' && p.child.exitCode === null && !p.child.signalCode,
    );
    old?.child.kill('SIGTERM');
    await old?.exited;
    const api = this.spawn('api', 'api', { PORT: new URL(this.apiUrl).port });
    await this.waitFor(api, /evop api listening/);
    return api;
  }

  get serviceToken(): string {
    return this.env.EVOP_SERVICE_TOKEN!;
  }

  /** SIGTERM to every process (workers finish their tasks in hand), then waits for them. */
  async stop(): Promise<void> {
    const running = this.processes.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
    for (const p of [...running].reverse()) p.child.kill('SIGTERM');
    await Promise.all(running.map((p) => p.exited));
  }

  private spawn(name: string, role: Role, env: NodeJS.ProcessEnv = {}): StackProcess {
    const dataDir = this.options.dataDir ?? STACK_DATA_DIR;
    mkdirSync(join(dataDir, name), { recursive: true });
    const child = spawn(process.execPath, ['--import', 'tsx', mainOf(role)], {
      env: {
        ...this.env,
        EVOP_API_URL: this.apiUrl || this.env.EVOP_API_URL,
        EVOP_ARTIFACT_DIR: artifactDirOf(dataDir, name),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const onLine = this.options.onLine ?? ((n, l) => process.stderr.write(`${n.padEnd(12)} ${l}\n`));
    const tail: string[] = [];
    for (const stream of [child.stdout!, child.stderr!]) {
      let buffer = '';
      stream.on('data', (chunk) => {
        buffer += chunk;
        const lines = buffer.split('\n');
        buffer = lines.pop()!;
        for (const line of lines) {
          onLine(name, line);
          tail.push(line);
          if (tail.length > 20) tail.shift();
          child.emit('line', line);
        }
      });
    }
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const entry = { name, role, child, exited, tail };
    this.processes.push(entry);
    return entry;
  }

  private waitFor(p: StackProcess, pattern: RegExp): Promise<string> {
    return new Promise((resolve, reject) => {
      const onLine = (line: string) => {
        if (!pattern.test(line)) return;
        p.child.off('line', onLine);
        resolve(line);
      };
      p.child.on('line', onLine);
      p.exited.then((code) =>
        reject(new Error(`${p.name} exited with ${code} before it was ready:\n${p.tail.join('\n')}`)),
      );
    });
  }
}
