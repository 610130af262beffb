/**
 * Scale (issue: models of real size): a Llama-shaped model of TinyLlama-1.1B's size with seeded random weights
 * in external data (4.1 GiB fp32), through every stage of evop: inspect, the search graph, mask evaluation (two
 * ways of using the cores), `evop prune`, and the service path (upload → job on 1 worker → download). Per stage:
 * wall time, peak RSS of each process, bytes it wrote to disk; against the targets of the issue.
 * `npm run bench:scale [-- medium]` (medium: a 0.6 GiB model, to try it); results in bench/results/scale.json.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { resolveDataFile } from '@evop/config';
import {
  finishedReport,
  startService,
  uploadModel,
  uploadStories,
} from '@evop/integration-tests/service-fixture';
import { machine, saveResult, table } from '../report.ts';
import type { ShapeName } from './model.ts';
import { type ProcessStats, watchProcess } from './proc-stats.ts';

const shape = (process.argv[2] ?? 'tinyllama') as ShapeName;
const dir = mkdtempSync(join(tmpdir(), 'evop-scale-'));
const modelPath = join(dir, 'model.onnx');
const evop = fileURLToPath(new URL('../../apps/cli/bin/evop.js', import.meta.url));
const stageScript = fileURLToPath(new URL('./stage.ts', import.meta.url));
const tokenizer = resolveDataFile('stories260K/tok512.bin');
const stories = resolveDataFile('tinystories-valid-sample/tinystories_val.txt');
const GiB = 2 ** 30;

interface Row {
  stage: string;
  seconds: number;
  processes: Record<string, ProcessStats>;
  detail?: Record<string, unknown>;
}
const rows: Row[] = [];

/** A command in its own process, watched; its last stdout line parsed as JSON when it is JSON. */
async function measured(stage: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Row> {
  const started = performance.now();
  const child = spawn(process.execPath, args, {
    env: { ...process.env, EVOP_PROVIDER: 'cpu', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const watch = watchProcess(child.pid!);
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const stats = watch.stop();
  if (code !== 0) throw new Error(`${stage}: exit ${code}\n${out.slice(-2000)}`);
  const last = out.trim().split('\n').at(-1) ?? '';
  const row: Row = {
    stage,
    seconds: (performance.now() - started) / 1000,
    processes: { [stage.split(' ')[0]!]: stats },
    ...(last.startsWith('{') ? { detail: JSON.parse(last) } : {}),
  };
  rows.push(row);
  process.stderr.write(`${stage}: ${row.seconds.toFixed(1)} s, ${stats.peakRssMiB.toFixed(0)} MiB\n`);
  return row;
}

try {
  await measured('generate', ['--import', 'tsx', stageScript, 'generate', dir, shape]);
  const weights = statSync(`${modelPath}.data`).size;
  await measured('inspect', [evop, 'inspect', modelPath, '--json']);
  await measured('instrument', ['--import', 'tsx', stageScript, 'instrument', dir]);
  for (const [threads, intra] of [
    [2, 1],
    [1, 2],
  ])
    try {
      await measured(
        `evaluate (${threads} threads × ${intra})`,
        ['--import', 'tsx', stageScript, 'evaluate', dir],
        {
          EVOP_EVAL_THREADS: String(threads),
          EVOP_INTRA_OP_THREADS: String(intra),
        },
      );
    } finally {
      for (const sub of ['cache', 'cache-pruned', 'pruned'])
        rmSync(join(dir, sub), { recursive: true, force: true });
    }
  const pruneOut = join(dir, 'prune');
  const spec = ['--remove', '1', '--granularity', 'layer', '--strategy', 'sleb', '--calibration', '2'];
  await measured('evop prune', [
    evop,
    'prune',
    ...['--model', modelPath, '--tokenizer', tokenizer, '--data', stories, ...spec],
    ...['--held-out', '2', '--seq-len', '64', '--out', pruneOut, '--quiet'],
  ]);
  rmSync(pruneOut, { recursive: true, force: true });

  // The service: API, coordinator and 1 worker as processes of their own, watched throughout.
  // The service's default locks: the tests' 3 s locks (there to make takeovers quick) would take a worker that
  // spends seconds writing GiB of pruned weights on its main thread for a dead one.
  const service = await startService(1, {
    EVOP_EVAL_THREADS: '1',
    EVOP_INTRA_OP_THREADS: '2',
    EVOP_WORKER_LOCK_MS: '60000',
    EVOP_COORDINATOR_LOCK_MS: '30000',
  });
  try {
    const watches = service.stack.processes.map((p) => ({ role: p.role, watch: watchProcess(p.child.pid!) }));
    const api = await service.client('scale');
    const phases: Record<string, number> = {};
    const timed = async <T>(phase: string, run: () => Promise<T>) => {
      const t = performance.now();
      const value = await run();
      phases[phase] = (performance.now() - t) / 1000;
      return value;
    };
    const started = performance.now();
    const modelId = await timed('upload', () => uploadModel(api, 'scale', modelPath, [tokenizer]));
    const datasetId = await uploadStories(api);
    const job = await timed('job', async () => {
      const submitted = await api.request('POST', '/v1/jobs', {
        modelId,
        datasetId,
        spec: {
          target: { units: 1 },
          granularity: 'layer',
          strategy: 'sleb',
          calibration: 2,
          heldOut: 2,
          seqLen: 64,
        },
      });
      await finishedReport(api, submitted.json.id as string, 3_600_000);
      return submitted.json.id as string;
    });
    await timed('download', async () => {
      mkdirSync(join(dir, 'download'), { recursive: true });
      for (const file of ['model.onnx', 'model.onnx.data']) {
        const response = await fetch(`${service.stack.apiUrl}/v1/jobs/${job}/artifacts/${file}`, {
          headers: { authorization: `Bearer ${api.key}` },
        });
        await pipeline(
          Readable.fromWeb(response.body as never),
          createWriteStream(join(dir, 'download', file)),
        );
      }
    });
    rows.push({
      stage: 'service (upload → job → download)',
      seconds: (performance.now() - started) / 1000,
      processes: Object.fromEntries(watches.map(({ role, watch }) => [role, watch.stop()])),
      detail: phases,
    });
  } finally {
    await service.close();
  }

  const gib = (bytes: number) => (bytes / GiB).toFixed(2);
  process.stdout.write(
    `${shape}: ${gib(weights)} GiB of weights; ${machine().cores} cores\n${table(
      ['stage', 'wall s', 'process', 'peak RSS MiB', 'peak PSS MiB', 'written GiB'],
      rows.flatMap((r) =>
        Object.entries(r.processes).map(([name, p], i) => [
          i === 0 ? r.stage : '',
          i === 0 ? r.seconds.toFixed(1) : '',
          name,
          p.peakRssMiB.toFixed(0),
          p.peakPssMiB.toFixed(0),
          gib(p.writtenBytes),
        ]),
      ),
    )}\n`,
  );
  for (const r of rows.filter((row) => row.stage.startsWith('evaluate')))
    process.stdout.write(
      `${r.stage}: ${(r.detail!.secondsPerMask as number).toFixed(1)} s/mask, a/c = ${(r.detail!.ratio as number).toFixed(2)}\n`,
    );
  const path = saveResult(shape === 'tinyllama' ? 'scale' : `scale-${shape}`, {
    machine: machine(),
    shape,
    weights,
    rows,
  });
  process.stdout.write(`saved ${path}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
