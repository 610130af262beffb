/**
 * The body of each evaluator-pool thread (run by piscina): onnxruntime's `run()` blocks its thread for the whole
 * inference, so it happens here, never on a thread that serves HTTP or renews queue locks. Sessions are created
 * on first use and kept, one per model and settings.
 */
import { existsSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import {
  createSession,
  type Provider,
  ProviderUnavailableError,
  type SessionSettings,
} from './session-factory.ts';
import { fromOrt, toOrt, type WireFeeds } from './wire-tensor.ts';

/** Every task names the models the pool released: their sessions (and memory) go before anything else runs. */
export type ThreadTask = {
  released: string[];
} /** Every thread takes one: each waits on `barrier` until all have started, so no thread takes two. */ & (
  | { op: 'drop'; barrier: SharedArrayBuffer; threads: number }
  | { op: 'load'; modelPath: string; settings: SessionSettings; tuning?: SessionTuning }
  | {
      op: 'run';
      modelPath: string;
      settings: SessionSettings;
      feeds: WireFeeds;
      fetches: string[];
      tuning?: SessionTuning;
    }
  | { op: 'time'; models: TimedRun[]; settings: SessionSettings; warmup: number; repeats: number }
);

/**
 * For models that take turns on a thread, run after run (a trie's segments): how many sessions the thread keeps
 * (instead of `MAX_SESSIONS`), and whether onnxruntime's threads spin after a run. Spinning threads of the session
 * that just ran take the cores from the next one: a chain of 18 segment runs took 2.4 s spinning, 0.8 s not.
 */
export interface SessionTuning {
  keep: number;
  spinning: boolean;
}

/** A model's steps, timed as one round (`InferencePool.time`). */
export interface TimedRun {
  modelPath: string;
  steps: TimedStep[];
}

/** A sequence of runs timed as one: each step's feeds, with named outputs carried into later steps' inputs. */
export interface TimedStep {
  feeds: WireFeeds;
  /** Inputs taken from the previous step's outputs: input name → output name (a KV cache, say). */
  carry?: Record<string, string>;
  /** Whether the step counts towards the time (default true); a prefill before decoding does not. */
  timed?: boolean;
}

export interface LoadResult {
  provider: Provider;
  inputNames: readonly string[];
  outputNames: readonly string[];
}

// A CUDA provider that fails to load is reported as a ProviderUnavailableError or one warning, not as native logs.
ort.env.logLevel = 'fatal';

/**
 * Sessions kept per thread: one. Graphs of one model (search, analysis) map the same weights, and a file mapped
 * twice is resident twice as far as the kernel's accounting goes; a model switch reloads, which without
 * prepacking costs little (the weights stay in the page cache).
 */
const MAX_SESSIONS = 1;
const sessions = new Map<string, Promise<{ session: ort.InferenceSession; provider: Provider }>>();
const warnings: string[] = [];

/** Releases the sessions of released models, and of model files that are gone (a one-off graph, say). */
function dropSessions(released: readonly string[]): void {
  for (const [key, entry] of sessions) {
    const path = key.split('\0')[0]!;
    if (!released.includes(path) && existsSync(path)) continue;
    sessions.delete(key);
    entry.then(({ session: s }) => s.release()).catch(() => {});
  }
}

const sessionKey = (modelPath: string, settings: SessionSettings) =>
  `${modelPath}\0${JSON.stringify(settings)}`;

/** The session of a model (made on first use), keeping `keep` sessions: more while models are timed in turn. */
function session(modelPath: string, settings: SessionSettings, keep = MAX_SESSIONS) {
  const key = sessionKey(modelPath, settings);
  let entry = sessions.get(key);
  if (entry) sessions.delete(key);
  else {
    entry = createSession(modelPath, settings, (m) => warnings.push(m));
    entry.catch(() => sessions.delete(key));
  }
  sessions.set(key, entry);
  for (const [oldKey, old] of sessions) {
    if (sessions.size <= keep) break;
    sessions.delete(oldKey);
    old.then(({ session: s }) => s.release()).catch(() => {});
  }
  return entry;
}

function tunedSession(task: { modelPath: string; settings: SessionSettings; tuning?: SessionTuning }) {
  if (!task.tuning) return session(task.modelPath, task.settings);
  return session(task.modelPath, { ...task.settings, spinning: task.tuning.spinning }, task.tuning.keep);
}

export default async function handle(task: ThreadTask): Promise<unknown> {
  dropSessions(task.released);
  if (task.op === 'drop') {
    const started = new Int32Array(task.barrier);
    Atomics.add(started, 0, 1);
    Atomics.notify(started, 0);
    const deadline = Date.now() + 60_000;
    let n = Atomics.load(started, 0);
    for (; n < task.threads && Date.now() < deadline; n = Atomics.load(started, 0))
      Atomics.wait(started, 0, n, 1000);
    // Whether every thread took one: then every thread has released these models' sessions.
    return n >= task.threads;
  }
  if (task.op === 'load') {
    // Errors lose their class crossing threads; a provider failure comes back as data for the pool to rethrow.
    const loaded = await tunedSession(task).catch((err: unknown) => {
      if (err instanceof ProviderUnavailableError) return { unavailable: err.message };
      throw err;
    });
    if ('unavailable' in loaded) return loaded;
    const { session: s, provider } = loaded;
    const result: LoadResult & { warnings: string[] } = {
      provider,
      inputNames: s.inputNames,
      outputNames: s.outputNames,
      warnings: warnings.splice(0),
    };
    return result;
  }
  if (task.op === 'run') {
    const { session: s } = await tunedSession(task);
    const feeds = Object.fromEntries(Object.entries(task.feeds).map(([k, v]) => [k, toOrt(v)]));
    const out = await s.run(feeds, task.fetches);
    // Outputs are small (per-row sums, pooled states): copied back rather than transferred.
    return Object.fromEntries(task.fetches.map((name) => [name, fromOrt(out[name]!)]));
  }
  // Timed: warm-up rounds, then `repeats` rounds; in each round every model runs all its steps, in turn, in the
  // opposite order every other round. Returns each model's seconds in timed steps, per round. Models timed in turn
  // get sessions whose threads do not spin after a run, and one that takes over from another first runs once
  // untimed (warm caches, as a deployment of one model has): spinning threads of the session that just ran take the
  // cores from the next one (a 64-token prefill timed 2.5 ms after itself, 6–18 ms after another model's run).
  const settings = task.models.length > 1 ? { ...task.settings, spinning: false } : task.settings;
  const timed: ort.InferenceSession[] = [];
  for (const m of task.models) {
    const fresh = !sessions.has(sessionKey(m.modelPath, settings));
    const { session: s } = await session(m.modelPath, settings, task.models.length);
    // A session's first run allocates and picks kernels: never timed, even when no warm-up was asked for (this
    // thread may not be the one that ran the previous rounds).
    if (fresh && task.warmup === 0) await timeSteps(s, m.steps);
    timed.push(s);
  }
  const seconds: number[][] = task.models.map(() => []);
  let last: number | undefined;
  for (let round = 0; round < task.warmup + task.repeats; round++) {
    const order = [...task.models.keys()];
    if (round % 2) order.reverse();
    for (const i of order) {
      if (last !== i && task.models.length > 1) await timeSteps(timed[i]!, task.models[i]!.steps);
      last = i;
      const elapsed = await timeSteps(timed[i]!, task.models[i]!.steps);
      if (round >= task.warmup) seconds[i]!.push(elapsed);
    }
  }
  return seconds;
}

/** Seconds spent in the timed steps of one pass through `steps`. */
async function timeSteps(s: ort.InferenceSession, steps: TimedStep[]): Promise<number> {
  let elapsed = 0n;
  let previous: ort.InferenceSession.OnnxValueMapType | undefined;
  for (const step of steps) {
    const feeds: Record<string, ort.Tensor> = Object.fromEntries(
      Object.entries(step.feeds).map(([k, v]) => [k, toOrt(v)]),
    );
    for (const [input, output] of Object.entries(step.carry ?? {})) feeds[input] = previous![output]!;
    const start = process.hrtime.bigint();
    previous = await s.run(feeds);
    if (step.timed ?? true) elapsed += process.hrtime.bigint() - start;
  }
  return Number(elapsed) / 1e9;
}
