/**
 * Pruned-model latency (issue: benchmarks): stories-deep16 with k of its 16 layers physically removed, prefill
 * and decode tokens/s (batch 1, median) dense vs pruned, against the ideal speedup L / (L − k). The layers removed
 * are spread over the depth (which ones matters little to speed). Dense and pruned are timed in turn, ROUNDS
 * times, and the median ratio is reported, so that a slow moment of a shared machine hits both. `npm run bench:latency`;
 * results in bench/results/latency.json.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runtimeConfig } from '@evop/config';
import { discoverLayers, pruneModel, readModel, writeModel } from '@evop/onnx';
import { InferencePool, type LatencyResult, measureLatency } from '@evop/runtime';
import { machine, median, saveResult, table } from '../report.ts';
import { storiesModel } from '../stories-model.ts';

const SETTINGS = { seqLen: 128, decodeTokens: 32, warmup: 3, repeats: 15 };
const ROUNDS = 5;
/** The stories models have a KV cache, so decode is always measured. */
const decodeRate = (l: LatencyResult) => l.decode!.median;
const dir = mkdtempSync(join(tmpdir(), 'evop-latency-'));
const pool = new InferencePool({ config: runtimeConfig() });
try {
  const { model: dense, layout } = storiesModel('stories-deep16', dir);
  const densePath = dense.path;
  const L = layout.layers;
  const denseLatency = await measureLatency(pool, densePath, layout, SETTINGS);
  const rows = [];
  for (const k of [2, 4, 6, 8]) {
    const removed = new Set(Array.from({ length: k }, (_, i) => Math.floor(((i + 0.5) * L) / k)));
    const mask = Array.from({ length: L }, (_, l) => (removed.has(l) ? '0' : '1')).join('');
    const path = join(dir, `pruned-${k}.onnx`);
    writeModel(
      pruneModel(dense.proto, layout, mask, { granularity: 'layer', sourceSha256: dense.sha256 }),
      path,
    );
    const prunedLayout = discoverLayers(readModel(path).proto);
    const ratios = { prefill: [] as number[], decode: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      const d = await measureLatency(pool, densePath, layout, SETTINGS);
      const p = await measureLatency(pool, path, prunedLayout, SETTINGS);
      ratios.prefill.push(p.prefill.median / d.prefill.median);
      ratios.decode.push(decodeRate(p) / decodeRate(d));
    }
    rows.push({
      k,
      mask,
      ideal: L / (L - k),
      prefill: median(ratios.prefill),
      decode: median(ratios.decode),
      ratios,
    });
  }
  process.stdout.write(
    `dense: prefill ${Math.round(denseLatency.prefill.median)} tokens/s, decode ${Math.round(decodeRate(denseLatency))} tokens/s\n` +
      `${table(
        ['removed', 'ideal L/(L-k)', 'prefill ×', 'decode ×', 'prefill / ideal', 'decode / ideal'],
        rows.map((r) => [
          `${r.k} of ${L}`,
          r.ideal.toFixed(2),
          r.prefill.toFixed(2),
          r.decode.toFixed(2),
          (r.prefill / r.ideal).toFixed(2),
          (r.decode / r.ideal).toFixed(2),
        ]),
      )}\n`,
  );
  const path = saveResult('latency', {
    machine: machine(),
    runtime: pool.config,
    settings: { ...SETTINGS, rounds: ROUNDS },
    dense: { prefill: denseLatency.prefill.median, decode: decodeRate(denseLatency) },
    rows,
  });
  process.stdout.write(`saved ${path}\n`);
} finally {
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
}
