import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveDataFile, serviceConfig } from '@evop/config';
import { discoverLayers, readModel } from '@evop/onnx';
import {
  checkServiceMaxima,
  checkTaskMemory,
  PipelineError,
  parseSearchSpec,
  planSearch,
  type SearchSpec,
  taskMemoryBytes,
} from '../src/index.ts';

const layoutOf = (file: string) => discoverLayers(readModel(resolveDataFile(file)).proto);
const spec = (fields: Partial<SearchSpec> = {}) => parseSearchSpec({ target: { units: 1 }, ...fields });
/** The PipelineError `fn` throws: its field and reason. */
function refusal(fn: () => void): { field: string; reason: string } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof PipelineError, String(err));
    return { field: err.field, reason: err.reason };
  }
  assert.fail('not refused');
}

test('the schema refuses absurd values anywhere (the CLI too), naming the field', () => {
  for (const [field, value] of [
    ['seqLen', 2 ** 20 + 1],
    ['calibration', 2 ** 53 - 1],
    ['heldOut', 2 ** 53 - 1],
    ['clusters', 2 ** 53 - 1],
    ['budget', 2 ** 53 - 1],
    ['taskLimit', 2 ** 53 - 1],
  ] as const)
    assert.equal(refusal(() => spec({ [field]: value })).field, field);
  assert.equal(spec({ seqLen: 2 ** 20 }).seqLen, 2 ** 20);
});

test("a service's maxima: each refused past it naming the field and its variable, accepted at it", () => {
  const maxima = serviceConfig({
    EVOP_MAX_SEQ_LEN: '512',
    EVOP_MAX_WINDOWS: '100',
    EVOP_MAX_CLUSTERS: '16',
    EVOP_MAX_BUDGET: '5000',
    EVOP_MAX_TASK_LIMIT: '300',
  });
  const atLimit = spec({
    seqLen: 512,
    calibration: 60,
    heldOut: 40,
    clusters: 16,
    budget: 5000,
    taskLimit: 300,
  });
  checkServiceMaxima(atLimit, maxima);
  const cases: [Partial<SearchSpec>, string, RegExp][] = [
    [{ seqLen: 513 }, 'seqLen', /^at most 512 on this service \(EVOP_MAX_SEQ_LEN\)$/],
    [{ clusters: 17 }, 'clusters', /at most 16 .*EVOP_MAX_CLUSTERS/],
    [{ budget: 5001 }, 'budget', /at most 5000 .*EVOP_MAX_BUDGET/],
    [{ taskLimit: 301 }, 'taskLimit', /at most 300 .*EVOP_MAX_TASK_LIMIT/],
    [
      { budget: 2000, front: [{ units: 2 }, { units: 3 }] },
      'budget',
      /^2000 per target × 3 targets = 6000 evaluations, at most 5000 on this service \(EVOP_MAX_BUDGET\)$/,
    ],
    [
      { calibration: 61 },
      'calibration',
      /calibration 61 \+ heldOut 40 = 101 windows, at most 100 .*EVOP_MAX_WINDOWS/,
    ],
    [{ calibration: 10, heldOut: 91 }, 'heldOut', /= 101 windows, at most 100/],
  ];
  for (const [fields, field, reason] of cases) {
    const r = refusal(() => checkServiceMaxima({ ...atLimit, ...fields }, maxima));
    assert.equal(r.field, field);
    assert.match(r.reason, reason);
  }
  // The defaults take evop prune's defaults.
  checkServiceMaxima(spec(), serviceConfig({}));
});

test("seqLen within a learned position table's context (GPT-2, OPT); a rotary model sets none", () => {
  for (const family of ['gpt2', 'opt']) {
    const layout = layoutOf(`hf-zoo/${family}/model.ts.onnx`);
    planSearch(layout, spec({ seqLen: 256 }));
    const r = refusal(() => planSearch(layout, spec({ seqLen: 257 })));
    assert.equal(r.field, 'seqLen');
    assert.match(r.reason, /^257 tokens, but the model's context is 256 positions/);
  }
  planSearch(layoutOf('hf-zoo/llama/model.ts.onnx'), spec({ seqLen: 2 ** 20 }));
});

test('task memory grows with seqLen², the heads a KV cache shows, threads running at once and fp32 weights', () => {
  const settings = { masksPerTask: 8, runtime: { maxBatchTokens: 4096, evalThreads: 1 } };
  const stories = layoutOf('stories260K-onnx-hfstyle/model.onnx'); // 8 heads of 8 (its KV cache says)
  const at = (seqLen: number, layout = stories, s = settings) =>
    taskMemoryBytes(layout, { seqLen, calibration: 8, heldOut: 8 }, s);
  const activations = (seqLen: number) => at(seqLen) - at(2);
  // One row per run past 4096 tokens: the attention term makes doubling seqLen cost ~4×.
  const ratio = activations(16384) / activations(8192);
  assert.ok(ratio > 3.9 && ratio <= 4, `ratio ${ratio}`);
  // Below it rows fill the run: B·T² = 4096·T grows linearly.
  const packed = activations(1024) / activations(512);
  assert.ok(packed > 1.8 && packed < 2.1, `packed ${packed}`);
  // 8 heads weigh more than the 1 assumed for a 64-wide model without a KV cache.
  assert.ok(at(4096) > at(4096, layoutOf('hf-zoo/llama/model.ts.onnx')));
  // Two threads run two runs at once: one more run's activations.
  const twoThreads = { ...settings, runtime: { ...settings.runtime, evalThreads: 2 } };
  const extra = at(8192, stories, twoThreads) - at(8192);
  assert.ok(Math.abs(extra - activations(8192)) / extra < 0.01, `${extra} vs ${activations(8192)}`);
  // The report's own numbers: seqLen 8192 on stories260K measured 7 GB per worker.
  assert.ok(at(8192) > 6 * 2 ** 30 && at(8192) < 8 * 2 ** 30, `${at(8192) / 2 ** 30} GiB`);
  const config = { masksPerTask: 8, workerMemoryBytes: Math.ceil(at(4096)) };
  checkTaskMemory(stories, spec({ seqLen: 4096, calibration: 8, heldOut: 8 }), config, settings.runtime);
  const r = refusal(() =>
    checkTaskMemory(stories, spec({ seqLen: 4097, calibration: 8, heldOut: 8 }), config, settings.runtime),
  );
  assert.equal(r.field, 'seqLen');
  assert.match(
    r.reason,
    /^a task would need ~1\.\d GiB of worker memory \(limit 1\.\d GiB, EVOP_WORKER_MEMORY_BYTES\)$/,
  );
});
