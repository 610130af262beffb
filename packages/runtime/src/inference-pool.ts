import { type RuntimeConfig, runtimeConfig } from '@evop/config';
import { Piscina } from 'piscina';
import type { LoadResult, ThreadTask, TimedStep } from './inference-thread.ts';
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

  constructor(options: InferencePoolOptions = {}) {
    this.config = options.config ?? runtimeConfig();
    this.warn = options.warn ?? ((m) => process.stderr.write(`evop: ${m}\n`));
    this.piscina = new Piscina({
      filename: new URL('./inference-thread.ts', import.meta.url).href,
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

  /** Loads a model (once) and returns its provider and interface; throws if no provider can run it. */
  load(modelPath: string): Promise<LoadResult> {
    let entry = this.loaded.get(modelPath);
    if (!entry) {
      entry = this.resolveSettings(modelPath).then((settings) =>
        this.piscina.run({ op: 'load', modelPath, settings } satisfies ThreadTask),
      );
      entry.catch(() => this.loaded.delete(modelPath));
      this.loaded.set(modelPath, entry);
    }
    return entry;
  }

  async run(
    modelPath: string,
    feeds: WireFeeds,
    fetches: string[],
    signal?: AbortSignal,
  ): Promise<Record<string, WireTensor>> {
    await this.load(modelPath);
    const task: ThreadTask = { op: 'run', modelPath, settings: await this.settings!, feeds, fetches };
    const transferList = [...new Set(Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer))];
    return this.piscina.run(task, { transferList, ...(signal ? { signal } : {}) });
  }

  /** Seconds of each of `repeats` rounds of `steps`, after `warmup` untimed rounds, on one thread. */
  async time(modelPath: string, steps: TimedStep[], warmup: number, repeats: number): Promise<number[]> {
    await this.load(modelPath);
    const settings = await this.settings!;
    return this.piscina.run({ op: 'time', modelPath, settings, steps, warmup, repeats } satisfies ThreadTask);
  }

  async close(): Promise<void> {
    await this.piscina.destroy();
  }

  /** The first model loaded settles the provider for every thread. */
  private resolveSettings(modelPath: string): Promise<SessionSettings> {
    this.settings ??= (async () => {
      const { provider, deviceId, intraOpThreads, graphOptimization } = this.config;
      const wanted: SessionSettings = { provider, deviceId, intraOpThreads, graphOptimization };
      const task: ThreadTask = { op: 'load', modelPath, settings: wanted };
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
