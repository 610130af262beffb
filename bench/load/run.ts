/**
 * Load (issue: reliability): the service as separate processes on loopback; CLIENTS clients poll job status
 * while a burst of JOBS submissions arrives, each sent twice with its Idempotency-Key. Checks that every
 * submission is accepted once and processed; reports p50 / p99 latency per request kind and the error count.
 * `npm run bench:load`; results in bench/results/load.json. Bounded: it stops after LIMIT_S seconds.
 */

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { resolveDataFile } from '@evop/config';
import { startService } from '@evop/integration-tests/service-fixture';
import { machine, saveResult, table } from '../report.ts';

const JOBS = Number(process.env.JOBS ?? 40);
const CLIENTS = Number(process.env.CLIENTS ?? 50);
const WORKERS = Number(process.env.WORKERS ?? 2);
const LIMIT_S = Number(process.env.LIMIT_S ?? 600);

const service = await startService(WORKERS, { EVOP_RATE_LIMIT: '1000000' });
const { stack } = service;
const t = service.db;
const key = (await service.client('load')).key;
const latencies: Record<string, number[]> = {};
let errors = 0;
const call = async (kind: string, path: string, init: RequestInit = {}) => {
  const t0 = performance.now();
  try {
    const r = await fetch(`${stack.apiUrl}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${key}`, ...init.headers },
    });
    // biome-ignore lint/suspicious/noExplicitAny: the benchmark reads the fields the API documents.
    const body: any = await r.json();
    if (r.status >= 500) errors++;
    return { status: r.status, body };
  } catch {
    errors++;
    // biome-ignore lint/suspicious/noExplicitAny: as above.
    return { status: 0, body: undefined as any };
  } finally {
    const list = latencies[kind] ?? [];
    latencies[kind] = list;
    list.push(performance.now() - t0);
  }
};
const percentile = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

try {
  const upload = async (path: string, fields: Record<string, string>, files: Record<string, string>) => {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.set(k, v);
    for (const [k, p] of Object.entries(files)) form.set(k, new Blob([readFileSync(p)]), basename(p));
    return (await call('upload', path, { method: 'POST', body: form })).body.id as string;
  };
  const modelId = await upload(
    '/v1/models',
    { name: 'stories260K' },
    {
      model: resolveDataFile('stories260K-onnx-hfstyle/model.onnx'),
      tokenizer: resolveDataFile('stories260K-onnx-hfstyle/tok512.bin'),
    },
  );
  const datasetId = await upload(
    '/v1/datasets',
    { name: 'tinystories' },
    {
      file: resolveDataFile('tinystories-valid-sample/tinystories_val.txt'),
    },
  );
  const spec = {
    target: { units: 2 },
    granularity: 'sublayer',
    budget: 40,
    calibration: 4,
    heldOut: 4,
    seqLen: 32,
  };
  const started = performance.now();
  const ids = new Set<string>();
  let stop = false;
  const pollers = Array.from({ length: CLIENTS }, async () => {
    while (!stop) {
      const list = await call('GET /v1/jobs', '/v1/jobs?limit=20');
      const job = list.body?.jobs?.[Math.floor(Math.random() * (list.body?.jobs?.length ?? 1))];
      if (job) await call('GET /v1/jobs/:id', `/v1/jobs/${job.id}`);
    }
  });
  // The burst: every submission twice, as a client that retries would.
  const submissions = await Promise.all(
    Array.from({ length: JOBS }, (_, i) =>
      Promise.all(
        [0, 1].map(() =>
          call('POST /v1/jobs', '/v1/jobs', {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': `load-${i}` },
            body: JSON.stringify({ modelId, datasetId, spec: { ...spec, seed: i } }),
          }),
        ),
      ),
    ),
  );
  for (const pair of submissions) for (const s of pair) if (s.status === 202) ids.add(s.body.id);
  const refused = submissions.flat().find((s) => s.status !== 202);
  if (refused) process.stdout.write(`a submission was refused: ${refused.status} ${refused.body?.detail}\n`);
  const acceptedOnce = submissions.every(
    ([a, b]) => a!.status === 202 && b!.status === 202 && a!.body.id === b!.body.id,
  );
  let finished = 0;
  let failures: string[] = [];
  while (performance.now() - started < LIMIT_S * 1000) {
    const rows = await t.db.job.findMany({
      where: { id: { in: [...ids] } },
      select: { status: true, error: true },
    });
    failures = rows.filter((r) => r.status === 'failed').map((r) => r.error ?? '');
    finished = rows.filter((r) => r.status === 'succeeded').length;
    if (rows.every((r) => ['succeeded', 'failed', 'cancelled'].includes(r.status))) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  stop = true;
  await Promise.all(pollers);
  const seconds = (performance.now() - started) / 1000;
  const kinds = Object.entries(latencies).map(([kind, xs]) => ({
    kind,
    requests: xs.length,
    p50: percentile(xs, 0.5),
    p99: percentile(xs, 0.99),
  }));
  process.stdout.write(
    `${table(
      ['request', 'count', 'p50 ms', 'p99 ms'],
      kinds.map((k) => [k.kind, k.requests, k.p50.toFixed(1), k.p99.toFixed(1)]),
    )}\n` +
      `${JOBS} submissions (each sent twice): ${ids.size} jobs created, accepted once: ${acceptedOnce}; ` +
      `${finished} succeeded, ${failures.length} failed${failures[0] ? ` (${failures[0]})` : ''} in ${seconds.toFixed(0)} s; ` +
      `${errors} errors (5xx or connection)\n`,
  );
  const path = saveResult('load', {
    machine: machine(),
    settings: { JOBS, CLIENTS, WORKERS, spec },
    jobsCreated: ids.size,
    acceptedOnce,
    succeeded: finished,
    failed: failures.length,
    seconds,
    errors,
    latency: kinds,
  });
  process.stdout.write(`saved ${path}\n`);
} finally {
  await service.close();
}
