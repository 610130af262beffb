import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import {
  discoverLayers,
  encodeModel,
  ModelError,
  type ModelProto,
  readModel,
  writeModel,
  writeModelAsync,
} from '../src/index.ts';
import { num } from '../src/proto.ts';
import { inlineTensorBytes, isExternal } from '../src/tensor.ts';
import { builtModel, DEEP16, feeds, HFSTYLE, session, storyWindows, tempDir } from './helpers.ts';

async function logitsOf(model: Parameters<typeof session>[0], layoutSource = model) {
  const layout = discoverLayers(
    typeof layoutSource === 'string' ? readModel(layoutSource).proto : layoutSource,
  );
  const out = await (await session(model)).run(feeds(layout, storyWindows(2, 32)));
  return out[layout.logits]!.data as Float32Array;
}

test('a model read and written back gives the same outputs in onnxruntime', async () => {
  const source = resolveDataFile(HFSTYLE);
  const copy = join(tempDir(), 'model.onnx');
  writeModel(readModel(source).proto, copy);
  assert.deepEqual(await logitsOf(copy), await logitsOf(source));
});

test('external data is written beside the model, read back, and gives the same outputs', async () => {
  const dir = tempDir();
  const model = builtModel(DEEP16);
  const written = writeModel(model, join(dir, 'model.onnx'), { externalData: 'external' });
  assert.deepEqual(written, [join(dir, 'model.onnx'), join(dir, 'model.onnx.data')]);
  const dataBytes = statSync(join(dir, 'model.onnx.data')).size;
  assert.ok(dataBytes > 12_000_000, 'the weight matrices are in the data file');
  assert.ok(statSync(join(dir, 'model.onnx')).size < dataBytes / 20, 'and not inline');
  const reread = readModel(join(dir, 'model.onnx'));
  assert.ok(reread.proto.graph.initializer.some(isExternal));
  assert.deepEqual(await logitsOf(join(dir, 'model.onnx')), await logitsOf(model));

  // Rewriting elsewhere copies the external bytes (auto keeps them external); inline brings them back in.
  const moved = join(tempDir(), 'moved.onnx');
  writeModel(reread.proto, moved);
  assert.ok(existsSync(`${moved}.data`));
  const inline = join(tempDir(), 'inline.onnx');
  writeModel(reread.proto, inline, { externalData: 'inline' });
  assert.ok(!existsSync(`${inline}.data`));
  assert.deepEqual(await logitsOf(moved, model), await logitsOf(model));
  assert.deepEqual(await logitsOf(inline, model), await logitsOf(model));
});

test("an IR 10 model (the dynamo exporter's) keeps every field through a read and write", () => {
  const source = resolveDataFile('hf-zoo/llama/model.dynamo.onnx');
  const copy = join(tempDir(), 'model.onnx');
  writeModel(readModel(source).proto, copy);
  const [a, b] = [source, copy].map((path) => readModel(path).proto);
  assert.equal(num(b!.irVersion), 10);
  // Node metadata (IR 10) holds the PyTorch module each node came from; an IR 8 schema dropped it.
  const metadata = (m: ModelProto) =>
    m.graph.node.map((n) => n.metadataProps.map((p) => `${p.key}=${p.value}`));
  assert.ok(
    metadata(a!)
      .flat()
      .some((p) => p.startsWith('pkg.torch.onnx.name_scopes=')),
  );
  assert.deepEqual(metadata(b!), metadata(a!));
  assert.deepEqual(
    b!.graph.valueInfo.map((v) => v.metadataProps.length),
    a!.graph.valueInfo.map((v) => v.metadataProps.length),
  );
  assert.deepEqual(Buffer.from(encodeModel(b!)), Buffer.from(encodeModel(a!)), 'byte for byte, re-encoded');
});

test('an exporter-written external-data model keeps every tensor byte through a round trip', () => {
  const source = readModel(resolveDataFile('onnx-genai-tiny-random-llama-fp16/model.onnx'));
  const copy = join(tempDir(), 'model.onnx');
  writeModel(source.proto, copy);
  const a = readModel(resolveDataFile('onnx-genai-tiny-random-llama-fp16/model.onnx'));
  const b = readModel(copy);
  const bytes = (m: typeof a) =>
    m.proto.graph.initializer.map((t) => {
      if (!isExternal(t)) return Buffer.from(inlineTensorBytes(t) ?? []);
      const entry = (k: string) => t.externalData.find((e) => e.key === k)!.value;
      const offset = Number(entry('offset'));
      return readFileSync(entry('location')).subarray(offset, offset + Number(entry('length')));
    });
  assert.equal(b.proto.graph.node.length, a.proto.graph.node.length);
  assert.deepEqual(bytes(b), bytes(a));
  a.proto.graph.initializer.forEach((t, i) => {
    if (isExternal(t)) assert.ok(isExternal(b.proto.graph.initializer[i]!), `${t.name} stays external`);
  });
});

test('truncated, random and missing files are refused with a ModelError', () => {
  const dir = tempDir();
  const bytes = readFileSync(resolveDataFile(HFSTYLE));
  const cases: Record<string, Buffer> = {
    'truncated.onnx': bytes.subarray(0, Math.floor(bytes.length * 0.6)),
    'random.onnx': Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) % 251)),
    'empty.onnx': Buffer.alloc(0),
    'text.onnx': Buffer.from('not a model at all\n'),
  };
  for (const [name, content] of Object.entries(cases)) {
    writeFileSync(join(dir, name), content);
    assert.throws(
      () => readModel(join(dir, name)),
      (err: unknown) => err instanceof ModelError && err.code === 'unreadable' && err.message.includes(name),
      name,
    );
  }
  assert.throws(() => readModel(join(dir, 'absent.onnx')), /cannot read .*absent\.onnx.*ENOENT/);
});

test('a missing external-data file is refused at read, and a failed write leaves no file behind', () => {
  const dir = tempDir();
  writeModel(builtModel(DEEP16), join(dir, 'model.onnx'), { externalData: 'external' });
  const loaded = readModel(join(dir, 'model.onnx'));
  unlinkSync(join(dir, 'model.onnx.data'));
  assert.throws(() => readModel(join(dir, 'model.onnx')), /cannot read external data .*model\.onnx\.data/);

  const out = tempDir();
  assert.throws(() => writeModel(loaded.proto, join(out, 'copy.onnx')));
  assert.deepEqual(readdirSync(out), [], 'no partial model or data file');
});

test('writeModelAsync writes the same bytes as writeModel, from inline and from external weights; a failed one leaves no file behind', async () => {
  const model = builtModel(DEEP16);
  const source = join(tempDir(), 'model.onnx');
  writeModel(model, source, { externalData: 'external' });
  const external = readModel(source).proto;
  for (const [proto, options] of [
    [model, { externalData: 'external' }],
    [model, {}],
    [external, {}],
  ] as const) {
    const [sync, async] = [tempDir(), tempDir()];
    const written = writeModel(proto, join(sync, 'm.onnx'), options);
    assert.deepEqual(
      await writeModelAsync(proto, join(async, 'm.onnx'), options),
      written.map((f) => f.replace(sync, async)),
    );
    for (const file of written)
      assert.ok(readFileSync(file).equals(readFileSync(file.replace(sync, async))), file);
  }
  const loaded = readModel(source);
  unlinkSync(`${source}.data`);
  const out = tempDir();
  await assert.rejects(writeModelAsync(loaded.proto, join(out, 'copy.onnx')), /cannot|ENOENT|ends before/);
  assert.deepEqual(readdirSync(out), [], 'no partial model or data file');
});

test('external-data offsets and lengths that are not whole byte counts within the file are refused, naming the tensor and the key', () => {
  const dir = tempDir();
  writeModel(readModel(resolveDataFile(HFSTYLE)).proto, join(dir, 'model.onnx'), {
    externalData: 'external',
  });
  const dataBytes = statSync(join(dir, 'model.onnx.data')).size;
  const { proto } = readModel(join(dir, 'model.onnx'));
  const tensor = proto.graph.initializer.find(isExternal)!;
  const length = Number(tensor.externalData.find((e) => e.key === 'length')!.value);
  const cases: [string, string, RegExp][] = [
    ['offset', 'NaN', /offset 'NaN'; it must be a whole number of bytes ≥ 0/],
    ['offset', '-4096', /offset '-4096'; it must be/],
    ['length', 'NaN', /length 'NaN'; it must be/],
    ['length', '-1', /length '-1'; it must be/],
    ['offset', '', /offset ''; it must be/],
    ['offset', '1e3', /offset '1e3'; it must be/],
    ['offset', '0x10', /offset '0x10'; it must be/],
    ['offset', ' 4', /offset ' 4'; it must be/],
    ['offset', '99999999999999999999', /offset '99999999999999999999'; it must be/],
    ['length', String(length - 4), new RegExp(`length ${length - 4}; its shape needs ${length} bytes`)],
    [
      'offset',
      String(dataBytes),
      new RegExp(`offset ${dataBytes} and length ${length}, past the end of 'model.onnx.data'`),
    ],
  ];
  for (const [key, value, message] of cases) {
    const { proto: edited } = readModel(join(dir, 'model.onnx'));
    // readModel made every location absolute: back to the file name, and one entry of one tensor edited.
    for (const t of edited.graph.initializer)
      for (const e of t.externalData) {
        if (e.key === 'location') e.value = 'model.onnx.data';
        if (t.name === tensor.name && e.key === key) e.value = value;
      }
    writeFileSync(join(dir, 'edited.onnx'), encodeModel(edited));
    assert.throws(
      () => readModel(join(dir, 'edited.onnx')),
      (err: unknown) =>
        err instanceof ModelError &&
        err.message.includes(`tensor '${tensor.name}'`) &&
        message.test(err.message) &&
        !err.message.includes(dir),
      `${key} '${value}'`,
    );
  }
});
