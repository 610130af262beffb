/** What a worker has done since it started, for its heartbeat. */
export class WorkerStats {
  readonly startedAt = new Date();
  readonly tasks: Record<string, number> = {};
  private busyMs = 0;
  private rows = 0;

  /** Runs a task, counting it and its time. */
  async track<R>(queue: string, rows: number, run: () => Promise<R>): Promise<R> {
    const t = performance.now();
    try {
      const result = await run();
      this.tasks[queue] = (this.tasks[queue] ?? 0) + 1;
      this.rows += rows;
      return result;
    } finally {
      this.busyMs += performance.now() - t;
    }
  }

  get busy(): number {
    return this.busyMs / Math.max(1, Date.now() - this.startedAt.getTime());
  }

  get rowsPerSecond(): number {
    return this.rows / Math.max(1e-3, this.busyMs / 1000);
  }
}
