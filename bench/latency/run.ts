/**
 * Pruned-model latency (issue: benchmarks): stories-deep16 with k of its 16 layers physically removed, prefill
 * and decode speed of the pruned model over the dense one (batch 1), against the ideal speedup L / (L − k). The
 * layers removed are spread over the depth (which ones matters little to speed). Each pair is measured by
 * `compareLatency`: dense and pruned in alternating rounds until the median ratio's 95 % interval is within ±2 %
 * or the time cap (EVOP_LATENCY_MAX_SECONDS, 20 s per phase) passes. `npm run bench:latency`; results in
 * bench/results/latency.json.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runtimeConfig } from '@evop/config';
import { discoverLayers, pruneModel, readModel, writeModel } from '@evop/onnx';
import { speedupText } from '@evop/pipeline/control';
import { compareLatency, type Estimate, InferencePool } from '@evop/runtime';
import { benchModel } from '../bench-model.ts';
import { machine, saveResult, table } from '../report.ts';

const SETTINGS = { seqLen: 128, decodeTokens: 32 };
const dir = mkdtempSync(join(tmpdir(), 'evop-latency-'));
const pool = new InferencePool({ config: runtimeConfig() });
const tokens = (e: Estimate) => String(Math.round(e.median));
try {
  const { model: dense, layout } = benchModel('stories-deep16', dir);
  const L = layout.layers;
  const rows = [];
  for (const k of [2, 4, 6, 8]) {
    const removed = new Set(Array.from({ length: k }, (_, i) => Math.floor(((i + 0.5) * L) / k)));
    const mask = Array.from({ length: L }, (_, l) => (removed.has(l) ? '0' : '1')).join('');
    const path = join(dir, `pruned-${k}.onnx`);
    writeModel(
      pruneModel(dense.proto, layout, mask, { granularity: 'layer', sourceSha256: dense.sha256 }),
      path,
    );
    const latency = await compareLatency(
      pool,
      { path: dense.path, layout },
      { path, layout: discoverLayers(readModel(path).proto) },
      { ...SETTINGS, maxSeconds: pool.config.latencyMaxSeconds },
    );
    // The stories models have a KV cache, so decode is always measured.
    rows.push({ k, mask, ideal: L / (L - k), prefill: latency.prefill, decode: latency.decode! });
    await pool.unload(path);
  }
  process.stdout.write(
    `${table(
      ['removed', 'ideal L/(L-k)', 'prefill ×', 'decode ×', 'rounds', 'dense tokens/s', 'pruned tokens/s'],
      rows.map((r) => [
        `${r.k} of ${L}`,
        r.ideal.toFixed(2),
        speedupText(r.prefill),
        speedupText(r.decode),
        `${r.prefill.rounds} / ${r.decode.rounds}`,
        `${tokens(r.prefill.dense)} / ${tokens(r.decode.dense)}`,
        `${tokens(r.prefill.pruned)} / ${tokens(r.decode.pruned)}`,
      ]),
    )}\n`,
  );
  const saved = saveResult('latency', {
    machine: machine(),
    runtime: pool.config,
    settings: SETTINGS,
    rows,
  });
  process.stdout.write(`saved ${saved}\n`);
} finally {
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
}
