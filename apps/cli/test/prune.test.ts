import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import { Llama2cTokenizer, readCorpus, TASKS, type TokenWindows, windowsFromDocuments } from '@evop/data';
import { discoverLayers, readModel } from '@evop/onnx';
import { decoderFeeds } from '@evop/runtime';
import * as ort from 'onnxruntime-node';
import type { PruneReport } from '../src/index.ts';
import { data, evop, smallPrune, tempDir } from './helpers.ts';

const readReport = (out: string) => JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as PruneReport;

test('evop prune writes every output, and the pruned model’s held-out perplexity recomputed from scratch matches', async () => {
  const out = tempDir();
  const run = await evop(smallPrune(out, ['--baselines']));
  assert.equal(run.code, 0, run.stderr);
  for (const file of [
    'model.onnx',
    'mask.json',
    'report.json',
    'report.html',
    'spec.json',
    'calibration.json',
    'checkpoints/evop.json',
  ])
    assert.ok(existsSync(join(out, file)), file);
  const report = readReport(out);
  assert.deepEqual(
    report.table.map((r) => r.method),
    ['dense', 'evop', 'shortgpt', 'blockpruner', 'evopress', 'random'],
  );
  assert.match(run.stdout, /\| evop +\| \d+\.\d{3}/);
  const mask = JSON.parse(readFileSync(join(out, 'mask.json'), 'utf8'));
  assert.equal(mask.mask, report.result.mask);
  assert.equal(mask.pruned.length, 2);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.ok(
    html.includes('new Chart(') && html.includes('class="heat"') && !html.includes('src="http'),
    'self-contained page',
  );

  // From scratch: the protocol's windows from the corpus, the plain pruned model, NLL from its logits.
  const tokenizer = Llama2cTokenizer.fromFile(data.tokenizer);
  const pool = windowsFromDocuments(readCorpus(data.stories), tokenizer, 64, 4 * 8 + 8);
  assert.equal(pool.sha256, report.calibration.poolSha256);
  const held: TokenWindows = pool.select(report.calibration.heldOutWindows);
  const pruned = readModel(join(out, 'model.onnx'));
  const layout = discoverLayers(pruned.proto);
  assert.equal(layout.blocks.length, 8, '2 of 10 sub-blocks are gone');
  const session = await ort.InferenceSession.create(join(out, 'model.onnx'), { logSeverityLevel: 3 });
  let nll = 0;
  let count = 0;
  for (let w = 0; w < held.count; w++) {
    const ids = Array.from(held.window(w));
    const feeds = decoderFeeds(layout, { ids, rows: 1, seqLen: 64 });
    const logits = (
      await session.run(
        Object.fromEntries(
          Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor(v.type, v.data as Float32Array, v.dims)]),
        ),
      )
    ).logits!.data as Float32Array;
    for (let t = 0; t < 63; t++) {
      const row = logits.subarray(t * 512, (t + 1) * 512);
      const max = Math.max(...row);
      nll += max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) - row[ids[t + 1]!]!;
      count++;
    }
  }
  const evopRow = report.table.find((r) => r.method === 'evop')!;
  assert.ok(
    Math.abs(Math.exp(nll / count) - evopRow.perplexity) / evopRow.perplexity <= 1e-4,
    `${Math.exp(nll / count)} vs ${evopRow.perplexity}`,
  );
  assert.ok(report.result.consistency <= 1e-4, 'gated and physical evaluation agree');
});

test('a run stopped by SIGINT resumes to the mask and history of an uninterrupted run', async () => {
  // stories-deep16, 4 of 16 layers: a space large enough that the search runs for many generations.
  const deep = (out: string) =>
    smallPrune(out, ['--budget', '100']).map((a) =>
      a === data.model ? data.deep16 : a === 'sublayer' ? 'layer' : a === '2' ? '4' : a,
    );
  const whole = tempDir();
  assert.equal((await evop(deep(whole))).code, 0);

  const stopped = tempDir();
  const first = await evop(deep(stopped), (child) => {
    const poll = setInterval(() => {
      const file = join(stopped, 'checkpoints', 'evop.json');
      if (existsSync(file) && JSON.parse(readFileSync(file, 'utf8')).history.length >= 3) {
        clearInterval(poll);
        child.kill('SIGINT');
      }
    }, 20);
    child.on('close', () => clearInterval(poll));
  });
  assert.equal(first.code, 130, first.stderr);
  assert.match(first.stderr, /continue with: evop prune --resume/);
  assert.ok(!existsSync(join(stopped, 'report.json')));
  const resumed = await evop(['prune', '--resume', stopped]);
  assert.equal(resumed.code, 0, resumed.stderr);
  const a = readReport(whole);
  const b = readReport(stopped);
  assert.equal(b.result.mask, a.result.mask);
  assert.deepEqual(b.searches[0]!.history, a.searches[0]!.history);
  assert.ok(a.searches[0]!.history.length > 3, 'the run had more generations than the stopped part');
});

test('a stage that fails after the search loses nothing, exits 3 naming it, and --resume completes it', async () => {
  // A damaged task file, found first through EVOP_DATA_DIR: the zero-shot stage fails, not the run.
  const damaged = tempDir();
  const taskFile = join(damaged, TASKS['arc-easy']);
  mkdirSync(dirname(taskFile), { recursive: true });
  writeFileSync(taskFile, '[{"instruction": "cut');
  const out = tempDir();
  const args = smallPrune(out, ['--tasks', 'arc-easy', '--task-limit', '10']);
  const first = await evop(args, undefined, { EVOP_DATA_DIR: damaged });
  assert.equal(first.code, 3, first.stderr);
  assert.match(first.stderr, /stage 'task:arc-easy' failed: .*ARC-Easy\.test\.json/);
  assert.match(first.stderr, /complete with: evop prune --resume /);
  for (const file of ['model.onnx', 'mask.json', 'report.json', 'report.html'])
    assert.ok(existsSync(join(out, file)), file);
  const partial = readReport(out);
  assert.deepEqual(
    partial.failed.map((f) => f.stage),
    ['task:arc-easy'],
  );
  assert.ok(partial.latency, 'the stages after the failed one ran');
  assert.deepEqual(partial.table[1]!.tasks, {});

  const resumed = await evop(['prune', '--resume', out]);
  assert.equal(resumed.code, 0, resumed.stderr);
  const complete = readReport(out);
  assert.deepEqual(complete.failed, []);
  assert.equal(complete.result.mask, partial.result.mask);
  assert.deepEqual(complete.latency, partial.latency, 'stages that succeeded are not run again');
  assert.equal(complete.table[1]!.tasks['arc-easy']!.n, 10);
});

test('bad arguments exit with code 2 and one clear line', async () => {
  const out = tempDir();
  const empty = join(out, 'empty.txt');
  writeFileSync(empty, '\n\n');
  const garbage = join(out, 'garbage.jsonl');
  writeFileSync(garbage, '\u0000\u0001 not json\n');
  const cases: [string[], RegExp][] = [
    [
      smallPrune(join(out, 'a')).map((a) => (a === data.model ? '/nope/model.onnx' : a)),
      /--model: no such file '\/nope\/model\.onnx'/,
    ],
    [
      [...smallPrune(join(out, 'b')), '--strategy', 'annealing'],
      /option '--strategy <name>' argument 'annealing' is invalid\. Allowed choices are evop, evopress/,
    ],
    [
      smallPrune(join(out, 'c')).map((a) => (a === '2' ? '10' : a)),
      /--remove: 10 units to prune, but the model has only 10/,
    ],
    [
      smallPrune(join(out, 'd')).map((a) => (a === data.stories ? empty : a)),
      /corpus '.*empty\.txt' has no text/,
    ],
    [smallPrune(join(out, 'e')).map((a) => (a === data.stories ? garbage : a)), /garbage\.jsonl:1: not JSON/],
    [
      smallPrune(join(out, 'f')).map((a) => (a === data.stories ? join(out, 'missing.txt') : a)),
      /--data: no such file/,
    ],
    [
      smallPrune(join(out, 'g')).map((a) =>
        a === data.tokenizer ? resolveDataFile('onnx-genai-tiny-random-llama-fp16/tokenizer.json') : a,
      ),
      /--tokenizer: has 32000 tokens but the model's embedding has 512/,
    ],
    // The spec schema's bounds, and the model's context where its graph fixes one (GPT-2: 256 positions).
    [
      [...smallPrune(join(out, 'h')), '--seq-len', '1048577'],
      /--seq-len: Too big: expected number to be <=1048576/,
    ],
    [
      [
        ...smallPrune(join(out, 'i')),
        ...['--model', resolveDataFile('hf-zoo/gpt2/model.ts.onnx')],
        ...['--tokenizer', resolveDataFile('hf-zoo/tokenizer.json'), '--seq-len', '257'],
      ],
      /--seq-len: 257 tokens, but the model's context is 256 positions/,
    ],
    [['prune', '--model', data.model, '--bogus'], /unknown option '--bogus'/],
    [['prune', '--model', data.model, '--sed', '1'], /unknown option '--sed' \(did you mean --seed\?\)/],
    [
      [...smallPrune(join(out, 'j')), '--seed', '1.5'],
      /option '--seed <n>' argument '1\.5' is invalid\. expected an integer/,
    ],
    [['launch'], /unknown command 'launch'/],
    [
      [...smallPrune(join(out, 'k')).map((a) => (a === 'sublayer' ? 'layer' : a)), '--balance', 'attn-mlp'],
      /--balance: attn-mlp balances attention and MLP blocks: use granularity sublayer/,
    ],
    [
      [...smallPrune(join(out, 'l')).map((a) => (a === '2' ? '3' : a)), '--balance', 'attn-mlp'],
      /--balance: 3 units to prune cannot be split equally between attn and mlp/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = await evop(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.ok(!r.stderr.includes('    at '), 'no stack trace');
  }
});

test('evop inspect lists layers, units and KV-cache inputs', async () => {
  const r = await evop(['inspect', data.model]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /5 decoder layers, hidden 64, vocabulary 512, 260,032 parameters/);
  assert.match(r.stdout, /attn0 +12352 +past_key_values\.0\.key, past_key_values\.0\.value/);
  assert.match(r.stdout, /mlp4 +33088 +-/);
});

test('evop prune gives held-out perplexity per data set, names the model and the pruned units’ modules', async () => {
  const out = tempDir();
  const hfStyle = resolveDataFile('stories260K-onnx-hfstyle/model.onnx');
  const wiki = resolveDataFile('wikitext-2-raw-test/wikitext-2-raw-v1-test.txt');
  const wikiTokenized = resolveDataFile('wikitext-2-tokenized-test/test.txt');
  const args = smallPrune(out, ['--data', wiki, '--eval-data', wikiTokenized, '--baselines']).map((a) =>
    a === data.model ? hfStyle : a,
  );
  const run = await evop(args);
  assert.equal(run.code, 0, run.stderr);
  const report = readReport(out);
  assert.equal(report.model.name, 'stories260K-onnx-hfstyle', 'the folder of a generic model.onnx');
  const sets = report.protocol.datasets;
  assert.deepEqual(
    sets.map((d) => [d.name, d.domain]),
    [
      ['tinystories_val.txt', 'in'],
      ['wikitext-2-raw-v1-test.txt', 'in'],
      ['test.txt', 'out'],
    ],
  );
  assert.equal(sets[0]!.windows + sets[1]!.windows, 8, 'the corpora share the held-out windows');
  assert.equal(sets[2]!.windows, 8, 'the out-of-domain set has as many windows of its own');
  assert.equal(report.table.length, 6);
  for (const row of report.table) {
    // Every window predicts as many tokens: the in-domain sets' NLL adds up to the held-out set's.
    const [a, b] = [Math.log(row.datasets[0]!), Math.log(row.datasets[1]!)];
    const whole = (sets[0]!.windows * a + sets[1]!.windows * b) / 8;
    assert.ok(Math.abs(whole - Math.log(row.perplexity)) < 1e-9, `${row.method}: ${whole} vs overall`);
    assert.ok(
      row.datasets[2]! > 2 * row.datasets[0]!,
      `${row.method}: Wikipedia is out of a TinyStories model's domain`,
    );
  }
  const units = new Map(report.model.units.map((u) => [u.id, u.module]));
  assert.deepEqual(
    report.result.prunedModules,
    report.result.pruned.map((id) => units.get(id)),
  );
  for (const module of report.result.prunedModules)
    assert.match(module!, /^model\.layers\.\d\.(self_attn|mlp)$/);
  assert.match(
    run.stdout,
    /\| method +\| held-out ppl +\| tinystories_val\.txt ppl \(in domain\) +\| wikitext-2-raw-v1-test\.txt ppl \(in domain\) +\| test\.txt ppl \(out of domain\) +\|/,
  );
  assert.ok(
    run.stdout.includes(`pruned: ${report.result.pruned.map((id) => `${id} (${units.get(id)})`).join(', ')}`),
    run.stdout,
  );
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /<title>evop: stories260K-onnx-hfstyle<\/title>/);
  assert.match(html, /<h1>evop: stories260K-onnx-hfstyle<\/h1>/);
  assert.match(html, /fraction of the population that prunes the unit/);
  assert.ok(html.includes('<th>test.txt ppl (out of domain)</th>'));

  const missing = await evop([...smallPrune(tempDir()), '--eval-data', join(out, 'nope.txt')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^evop: --eval-data: no such file '.*nope\.txt'\n$/);

  // A run an earlier evop started (its spec.json has no evalData) resumes, with its one corpus.
  const old = tempDir();
  const { evalData: _none, ...spec } = JSON.parse(readFileSync(join(out, 'spec.json'), 'utf8'));
  writeFileSync(join(old, 'spec.json'), JSON.stringify({ ...spec, data: [data.stories], baselines: false }));
  const resumed = await evop(['prune', '--resume', old]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.deepEqual(
    readReport(old).protocol.datasets.map((d) => [d.name, d.domain, d.windows]),
    [['tinystories_val.txt', 'in', 8]],
  );
});

test('--balance attn-mlp: every method removes as many attention as MLP blocks', async () => {
  const out = tempDir();
  const run = await evop(smallPrune(out, ['--balance', 'attn-mlp', '--baselines', '--quiet', '--json']));
  assert.equal(run.code, 0, run.stderr);
  const { table } = JSON.parse(run.stdout) as { table: { method: string; mask: string }[] };
  assert.deepEqual(
    table.map((r) => r.method),
    ['dense', 'evop', 'shortgpt', 'blockpruner', 'evopress', 'random'],
  );
  const { model } = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as {
    model: { units: { id: string }[] };
  };
  for (const { method, mask } of table.slice(1)) {
    const pruned = [...mask].flatMap((bit, i) =>
      bit === '0' ? [model.units[i]!.id.replace(/\d+$/, '')] : [],
    );
    assert.deepEqual(pruned.sort(), ['attn', 'mlp'], `${method}: ${mask}`);
  }
});
