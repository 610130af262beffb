import type { Logger } from './logger.ts';

/** One step of a process's graceful stop. */
export interface ShutdownStep {
  name: string;
  run: () => Promise<unknown>;
  /** How long the step may take before the stop goes on without it (default 5 s). */
  timeoutMs?: number;
}

/**
 * Stops the process on SIGTERM / SIGINT: runs `steps` in order, each bounded by its timeout, then exits 0.
 * A step that does not finish in time (a queue client stuck reconnecting after a Redis restart, a request that
 * never ends) is logged and skipped, so a process told to stop always does: whatever it held is safe elsewhere
 * (jobs and tasks go back to their queues when their locks expire; state is in PostgreSQL and Redis).
 */
export function stopOnSignals(log: Logger, steps: readonly ShutdownStep[]): void {
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    for (const step of steps) {
      const timeoutMs = step.timeoutMs ?? 5_000;
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        step.run().then(
          () => true,
          (err: unknown) => {
            log.warn({ err, step: step.name }, 'shutdown step failed; going on');
            return true;
          },
        ),
        new Promise<false>((resolve) => {
          timer = setTimeout(resolve, timeoutMs, false);
        }),
      ]);
      clearTimeout(timer);
      if (!finished)
        log.warn({ step: step.name, timeoutMs }, 'shutdown step did not finish in time; going on');
    }
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
