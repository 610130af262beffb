import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '@evop/config';
import { type ArtifactStore, parseManifest } from '@evop/data';
import type { Database, Transaction } from '@evop/db';
import { collectingArtifacts } from './artifact-records.ts';
import { resultPoints } from './result-points.ts';
import { stagingInUse, stagingRoot } from './uploads.ts';

export interface ArtifactCollectorOptions {
  /** An artifact no row names is kept this long after it was last stored or kept (uploads and tasks in flight). */
  graceMs: number;
  /** How often the store is collected besides after each deletion. */
  intervalMs: number;
}

/**
 * Garbage collection of the API's artifact store. An artifact lives while a row names it: a model's files,
 * manifest and tokenizer, a dataset, a job's calibration windows, a result's pruned model. Every other artifact
 * (what a deleted model or job held, a job's intermediate windows, staging left by a crash) is removed once it
 * was last used before the grace period and before the oldest unfinished job was submitted (whose tasks may
 * still read what they uploaded). The sweep holds an advisory lock that uploads take while they keep files.
 */
export class ArtifactCollector {
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Database,
    private readonly store: ArtifactStore,
    private readonly log: Logger,
    private readonly options: ArtifactCollectorOptions,
  ) {}

  /** Collects every `intervalMs` until `stop`. */
  start(): void {
    this.timer = setInterval(() => void this.soon(), this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.again = false;
    await this.running;
  }

  /** Starts a collection now, or right after the one under way; failures are logged (the next one retries). */
  soon(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.collect();
        } catch (err) {
          this.log.warn({ err }, 'artifact collection failed; the next one retries');
        }
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** One collection: the artifacts it removed and their bytes. */
  async collect(): Promise<{ removed: number; bytes: number }> {
    const outcome = await collectingArtifacts(this.db, async (tx) => {
      const cutoff = await this.cutoff(tx);
      const live = await this.referenced(tx);
      const rows = new Map(
        (await tx.artifact.findMany({ select: { sha256: true, usedAt: true } })).map((r) => [
          r.sha256,
          r.usedAt.getTime(),
        ]),
      );
      const unused = this.store
        .list()
        .filter((f) => !live.has(f.sha256) && Math.max(f.mtimeMs, rows.get(f.sha256) ?? 0) < cutoff);
      const gone = [...rows].filter(([sha, usedAt]) => !live.has(sha) && usedAt < cutoff).map(([sha]) => sha);
      for (const f of unused) this.store.remove(f.sha256);
      await tx.artifact.deleteMany({
        where: { sha256: { in: [...new Set([...gone, ...unused.map((f) => f.sha256)])] } },
      });
      return { removed: unused.length, bytes: unused.reduce((n, f) => n + f.bytes, 0), cutoff };
    });
    this.removeStaleStaging(outcome.cutoff);
    if (outcome.removed > 0)
      this.log.info({ removed: outcome.removed, bytes: outcome.bytes }, 'unused artifacts removed');
    return { removed: outcome.removed, bytes: outcome.bytes };
  }

  private async cutoff(tx: Transaction): Promise<number> {
    const oldest = await tx.job.findFirst({
      where: { status: { in: ['queued', 'running'] } },
      orderBy: { createdAt: 'asc' },
      select: { createdAt: true },
    });
    return Math.min(
      Date.now() - this.options.graceMs,
      oldest?.createdAt.getTime() ?? Number.POSITIVE_INFINITY,
    );
  }

  private async referenced(tx: Transaction): Promise<Set<string>> {
    const live = new Set<string>();
    const add = (...shas: (string | null)[]) => {
      for (const sha of shas) if (sha) live.add(sha);
    };
    for (const m of await tx.model.findMany({
      select: { files: true, manifestSha256: true, tokenizerSha256: true, tokenizerConfigSha256: true },
    })) {
      add(m.manifestSha256, m.tokenizerSha256, m.tokenizerConfigSha256);
      add(...(m.files as unknown as { sha256: string }[]).map((f) => f.sha256));
    }
    for (const d of await tx.dataset.findMany({ select: { sha256: true } })) add(d.sha256);
    for (const c of await tx.calibration.findMany())
      add(c.searchSha256, c.searchClustersSha256, c.heldOutSha256, c.heldOutClustersSha256);
    for (const r of await tx.result.findMany({ select: { modelManifestSha256: true, points: true } }))
      for (const manifest of [r.modelManifestSha256, ...resultPoints(r).map((p) => p.modelManifestSha256)]) {
        add(manifest);
        // A model whose manifest cannot be read keeps nothing else: it cannot be downloaded either.
        if (this.store.has(manifest))
          add(...parseManifest(this.store.read(manifest)).files.map((f) => f.sha256));
      }
    return live;
  }

  /** Staging folders and partial uploads a crashed request left behind (this process's own are in use). */
  private removeStaleStaging(cutoff: number): void {
    const stale = (path: string) => {
      try {
        return statSync(path).mtimeMs < cutoff;
      } catch {
        return false;
      }
    };
    const staging = stagingRoot(this.store);
    for (const dir of safeList(staging).map((d) => join(staging, d)))
      if (!stagingInUse.has(dir) && stale(dir)) rmSync(dir, { recursive: true, force: true });
    const ours = `.upload-${process.pid}-`;
    for (const file of safeList(this.store.dir))
      if (file.startsWith('.upload-') && !file.startsWith(ours) && stale(join(this.store.dir, file)))
        rmSync(join(this.store.dir, file), { force: true });
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
