import { isFinished, type JobEvent, type JobStatusEvent } from '@evop/queue/job-events';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { type ApiClient, ApiRefusal } from './api-client.ts';

export interface FollowOptions {
  /** Each event once (generations seen before a reconnect are not repeated). */
  onEvent: (event: JobEvent) => void;
  /** The stream was lost; the next try comes after `delayMs`. */
  onReconnect?: (reason: string, delayMs: number) => void;
  /** Give up after this long without a stream (default 5 min). */
  giveUpMs?: number;
}

/** Silence longer than this means a dead connection: the API sends a keepalive comment every 15 s. */
const IDLE_MS = 45_000;
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Follows a job's server-sent events (GET /v1/jobs/:id/events) until its final status, which it returns. A stream
 * that breaks, ends early or falls silent is opened again with growing delays (the API restarting, a proxy
 * timing out); the API replays the job's generations on each stream, and those seen are skipped. A refusal (4xx)
 * is thrown at once; after `giveUpMs` without a stream, the last reason is.
 */
export async function followJob(
  api: ApiClient,
  jobId: string,
  options: FollowOptions,
): Promise<JobStatusEvent> {
  const seen = new Set<string>();
  const giveUpMs = options.giveUpMs ?? 300_000;
  let lostAt: number | undefined;
  let delay = FIRST_DELAY_MS;
  for (;;) {
    let reason = 'the event stream ended before the job did';
    const idle = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const awake = () => {
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(), IDLE_MS);
    };
    try {
      awake();
      const response = await api.once('GET', `/v1/jobs/${jobId}/events`, {
        headers: { accept: 'text/event-stream' },
        signal: idle.signal,
      });
      lostAt = undefined;
      delay = FIRST_DELAY_MS;
      const messages = response
        .body!.pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(chunk, controller) {
              awake();
              controller.enqueue(chunk);
            },
          }),
        )
        .pipeThrough(new TextDecoderStream())
        .pipeThrough(new EventSourceParserStream());
      for await (const message of messages as unknown as AsyncIterable<{ id?: string; data: string }>) {
        if (message.id !== undefined) {
          if (seen.has(message.id)) continue;
          seen.add(message.id);
        }
        const event = JSON.parse(message.data) as JobEvent;
        options.onEvent(event);
        if (event.type === 'status' && isFinished(event.status)) return event;
      }
    } catch (err) {
      if (err instanceof ApiRefusal) throw err;
      reason = idle.signal.aborted ? `no word from the API for ${IDLE_MS / 1000} s` : (err as Error).message;
    } finally {
      clearTimeout(timer);
      idle.abort(); // the connection of a stream left early goes
    }
    lostAt ??= Date.now();
    if (Date.now() - lostAt > giveUpMs)
      throw new Error(`lost the events of job ${jobId} for ${Math.round(giveUpMs / 1000)} s: ${reason}`);
    options.onReconnect?.(reason, delay);
    await sleep(delay);
    delay = Math.min(2 * delay, MAX_DELAY_MS);
  }
}
