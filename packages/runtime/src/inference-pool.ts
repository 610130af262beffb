import { setMaxListeners } from 'node:events';
import { type RuntimeConfig, runtimeConfig, threadModule } from '@evop/config';
import { Piscina } from 'piscina';
import type { LoadResult, SessionTuning, ThreadTask, TimedRun } from './inference-thread.ts';
import { ProviderUnavailableError, type SessionSettings } from './session-factory.ts';
import type { WireFeeds, WireTensor } from './wire-tensor.ts';

export interface InferencePoolOptions {
  /** Runtime settings; default: from the environment (EVOP_PROVIDER, EVOP_EVAL_THREADS, …). */
  config?: RuntimeConfig;
  /** Where provider fallbacks are reported, once per pool (default: stderr). */
  warn?: (message: string) => void;
}

/**
 * A pool of worker threads, each with its own onnxruntime sessions, that runs models off the calling thread.
 * The provider is settled once per pool, on the first model loaded: `auto` falls back to CPU with one warning.
 */
export class InferencePool {
  readonly config: RuntimeConfig;
  private readonly piscina: Piscina;
  private readonly warn: (message: string) => void;
  private settings: Promise<SessionSettings> | undefined;
  private readonly loaded = new Map<string, Promise<LoadResult>>();
  private readonly released = new Set<string>();

  constructor(options: InferencePoolOptions = {}) {
    this.config = options.config ?? runtimeConfig();
    this.warn = options.warn ?? ((m) => process.stderr.write(`evop: ${m}\n`));
    this.piscina = new Piscina({
      ...threadModule('inference-thread', import.meta.url),
      minThreads: this.config.evalThreads,
      maxThreads: this.config.evalThreads,
      idleTimeout: Number.POSITIVE_INFINITY,
      // Each thread handles one inference at a time; more would only contend for the same cores.
      concurrentTasksPerWorker: 1,
    });
  }

  get threads(): number {
    return this.config.evalThreads;
  }

  /** The provider sessions run on, once a model has loaded (`cpu` or `cuda`). */
  get provider(): string | undefined {
    return this.loadedProvider;
  }
  private loadedProvider: string | undefined;

  /** Loads a model (once) and returns its provider and interface; throws if no provider can run it. */
  load(modelPath: string): Promise<LoadResult> {
    this.released.delete(modelPath);
    let entry = this.loaded.get(modelPath);
    if (!entry) {
      entry = this.resolveSettings(modelPath)
        .then((settings) =>
          this.piscina.run({
            op: 'load',
            modelPath,
            settings,
            released: this.releasedList,
            ...this.tuningOf(modelPath),
          } satisfies ThreadTask),
        )
        .then((result: LoadResult) => {
          this.loadedProvider = result.provider;
          return result;
        });
      entry.catch(() => this.loaded.delete(modelPath));
      this.loaded.set(modelPath, entry);
    }
    return entry;
  }

  /**
   * Runs a model on a free thread. An aborted `signal` rejects runs still waiting for a thread; a run already on
   * a thread finishes (stopping onnxruntime mid-run would mean killing its thread), so cancellation waits at most
   * one run per thread.
   */
  async run(
    modelPath: string,
    feeds: WireFeeds,
    fetches: string[],
    signal?: AbortSignal,
  ): Promise<Record<string, WireTensor>> {
    await this.load(modelPath);
    const settings = await this.settings!;
    await this.acquire(signal);
    const task: ThreadTask = {
      op: 'run',
      modelPath,
      settings,
      feeds,
      fetches,
      released: this.releasedList,
      ...this.tuningOf(modelPath),
    };
    const transferList = [...new Set(Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer))];
    const running: Promise<Record<string, WireTensor>> = this.piscina.run(task, { transferList });
    this.inFlight.add(running);
    try {
      return await running;
    } finally {
      this.inFlight.delete(running);
      this.release();
    }
  }

  /** Models whose sessions take turns on a thread, run after run (a trie's segments): see `SessionTuning`. */
  tune(modelPaths: readonly string[], tuning: SessionTuning): void {
    for (const path of modelPaths) this.tunings.set(path, tuning);
  }

  private readonly tunings = new Map<string, SessionTuning>();

  private tuningOf(modelPath: string): { tuning?: SessionTuning } {
    const tuning = this.tunings.get(modelPath);
    return tuning ? { tuning } : {};
  }

  private readonly inFlight = new Set<Promise<unknown>>();
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  private acquire(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.active < this.threads) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', cancel);
        this.active++;
        resolve();
      };
      const cancel = () => {
        this.waiting.splice(this.waiting.indexOf(grant), 1);
        reject(signal!.reason);
      };
      if (signal) {
        // One listener per queued run, removed when it starts: a batch of many runs queues more than the default 10
        // (Node would warn of a leak on every `evop prune`).
        setMaxListeners(0, signal);
        signal.addEventListener('abort', cancel, { once: true });
      }
      this.waiting.push(grant);
    });
  }

  private release(): void {
    this.active--;
    this.waiting.shift()?.();
  }

  /**
   * Seconds of each of `repeats` rounds, after `warmup` untimed rounds, on one thread: per model, in `models`'
   * order. Each round runs every model's steps in turn (the order reversed every other round), so that a change
   * in the machine's load hits them alike; their sessions stay loaded side by side meanwhile.
   */
  async time(models: TimedRun[], warmup: number, repeats: number): Promise<number[][]> {
    for (const m of models) await this.load(m.modelPath);
    const settings = await this.settings!;
    return this.piscina.run({
      op: 'time',
      models,
      settings,
      warmup,
      repeats,
      released: this.releasedList,
    } satisfies ThreadTask);
  }

  /**
   * Models not needed for a while: every thread releases their sessions (and the memory they hold) now, so that
   * the next model loads into the memory they held. Using a model again loads it again.
   */
  async unload(...modelPaths: string[]): Promise<void> {
    for (const path of modelPaths) {
      this.released.add(path);
      this.loaded.delete(path);
    }
    const barrier = new SharedArrayBuffer(4);
    const everyThread: boolean[] = await Promise.all(
      Array.from({ length: this.threads }, () =>
        this.piscina.run({
          op: 'drop',
          barrier,
          threads: this.threads,
          released: this.releasedList,
        } satisfies ThreadTask),
      ),
    );
    // Every thread has dropped them: later tasks need not name them again (the list would only grow, one job's
    // graphs after another, and travel with every run). A thread the barrier missed drops them with its next task.
    if (everyThread.every(Boolean)) for (const path of modelPaths) this.released.delete(path);
  }

  private get releasedList(): string[] {
    return [...this.released];
  }

  /** Waits for the runs on threads to finish (a thread ended mid-inference takes the process down), then stops. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    await this.piscina.destroy();
  }

  /** The first model loaded settles the provider for every thread. */
  private resolveSettings(modelPath: string): Promise<SessionSettings> {
    this.settings ??= (async () => {
      const { provider, deviceId, intraOpThreads, graphOptimization, prepack } = this.config;
      const wanted: SessionSettings = { provider, deviceId, intraOpThreads, graphOptimization, prepack };
      const task: ThreadTask = { op: 'load', modelPath, settings: wanted, released: this.releasedList };
      const probe = (await this.piscina.run(task)) as
        | (LoadResult & { warnings: string[] })
        | { unavailable: string };
      if ('unavailable' in probe) throw new ProviderUnavailableError(probe.unavailable);
      for (const message of probe.warnings) this.warn(message);
      return { ...wanted, provider: probe.provider };
    })();
    this.settings.catch(() => {
      this.settings = undefined;
    });
    return this.settings;
  }
}
