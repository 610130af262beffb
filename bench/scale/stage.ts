/**
 * One stage of the scale benchmark, in its own process so that its peak RSS and bytes written are its own
 * (bench/scale/run.ts reads them from /proc). Prints one JSON line.
 *   generate DIR SHAPE   the random Llama-shaped model (model.onnx + model.onnx.data)
 *   instrument DIR       the search graph written beside its model, referencing the model's weights
 *   evaluate DIR         4 masks × 8 windows × 128 tokens through the search graph (a), and one of those masks as
 *                        the physically pruned model's forward (c)
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { resolveDataFile, runtimeConfig } from '@evop/config';
import { Llama2cTokenizer, readCorpus, windowsFromDocuments } from '@evop/data';
import {
  derivableIn,
  discoverLayers,
  instrument,
  pruneModel,
  readModel,
  unitsOf,
  writeModel,
} from '@evop/onnx';
import { InferencePool, OnnxEvaluator } from '@evop/runtime';
import { SHAPES, type ShapeName, writeScaleModel } from './model.ts';

const [stage, dir, shape] = process.argv.slice(2) as [string, string, ShapeName | undefined];
const modelPath = join(dir, 'model.onnx');
const started = performance.now();
const result: Record<string, unknown> = { stage };

if (stage === 'generate') {
  mkdirSync(dir, { recursive: true });
  writeScaleModel(dir, SHAPES[shape ?? 'tinyllama'], 1);
} else if (stage === 'instrument') {
  const model = readModel(modelPath);
  const graphs = join(dir, 'graphs');
  writeModel(
    instrument(derivableIn(model, graphs), discoverLayers(model.proto), { granularity: 'layer' }),
    join(graphs, 'search.onnx'),
    {
      externalData: 'reference',
    },
  );
} else if (stage === 'evaluate') {
  const model = readModel(modelPath);
  const layout = discoverLayers(model.proto);
  const tokenizer = Llama2cTokenizer.fromFile(resolveDataFile('stories260K/tok512.bin'));
  const windows = windowsFromDocuments(
    readCorpus(resolveDataFile('tinystories-valid-sample/tinystories_val.txt')),
    tokenizer,
    128,
    8,
  );
  const L = unitsOf(layout, 'layer').length;
  // Four masks removing a quarter of the layers each, spread differently.
  const masks = [0, 1, 2, 3].map((k) =>
    Array.from({ length: L }, (_, l) => (l % 4 === k && l > 0 && l < L - 1 ? '0' : '1')).join(''),
  );
  const pool = new InferencePool({ config: runtimeConfig() });
  const evaluator = await OnnxEvaluator.create({
    pool,
    model,
    layout,
    granularity: 'layer',
    cacheDir: join(dir, 'cache'),
  });
  const time = async (run: () => Promise<unknown>) => {
    const t = performance.now();
    await run();
    return (performance.now() - t) / 1000;
  };
  await evaluator.evaluate([masks[0]!], windows); // warm-up: session, arenas
  const a = (await time(() => evaluator.evaluate(masks, windows))) / masks.length;
  const aOne = await time(() => evaluator.evaluate([masks[1]!], windows));
  await evaluator.unload();
  const prunedPath = join(dir, 'pruned', 'model.onnx');
  writeModel(
    pruneModel(model.proto, layout, masks[1]!, { granularity: 'layer', sourceSha256: model.sha256 }),
    prunedPath,
  );
  const pruned = readModel(prunedPath);
  const plain = await OnnxEvaluator.create({
    pool,
    model: pruned,
    layout: discoverLayers(pruned.proto),
    granularity: 'layer',
    cacheDir: join(dir, 'cache-pruned'),
  });
  await plain.evaluate([plain.allKept], windows);
  const c = await time(() => plain.evaluate([plain.allKept], windows));
  await pool.close();
  Object.assign(result, {
    runtime: pool.config,
    masks,
    secondsPerMask: a,
    masksPerSecond: 1 / a,
    secondsOneMask: aOne,
    secondsPrunedForward: c,
    ratio: aOne / c,
  });
}
result.seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify(result));
