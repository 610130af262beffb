import { EventEmitter } from 'node:events';
import { channels, type JobEvent } from '@evop/queue';
import type { Redis } from 'ioredis';

/**
 * Job events from Redis pub/sub, fanned out to the API's SSE streams: one subscriber connection per API
 * process, whatever the number of streams.
 */
export class JobEventHub {
  private readonly emitter = new EventEmitter();

  private constructor(
    private readonly subscriber: Redis,
    private readonly prefix: string,
  ) {
    this.emitter.setMaxListeners(0);
  }

  static async open(subscriber: Redis, prefix: string): Promise<JobEventHub> {
    const hub = new JobEventHub(subscriber, prefix);
    const start = channels.jobEvents(prefix, '').length;
    subscriber.on('pmessage', (_pattern, channel: string, message: string) => {
      hub.emitter.emit(channel.slice(start), JSON.parse(message) as JobEvent);
    });
    await subscriber.psubscribe(channels.jobEventsPattern(prefix));
    return hub;
  }

  /** Listeners of all jobs: the API's open SSE streams (a gauge on /metrics; each stream removes its own). */
  get listeners(): number {
    return this.emitter.eventNames().reduce((n, job) => n + this.emitter.listenerCount(job), 0);
  }

  /** Calls `listener` with each event of the job until the returned function is called. */
  listen(jobId: string, listener: (event: JobEvent) => void): () => void {
    this.emitter.on(jobId, listener);
    return () => this.emitter.off(jobId, listener);
  }

  async close(): Promise<void> {
    await this.subscriber.punsubscribe(channels.jobEventsPattern(this.prefix));
  }
}
