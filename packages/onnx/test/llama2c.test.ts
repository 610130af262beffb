import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveDataFile } from '@evop/config';
import { Llama2cTokenizer } from '@evop/data';
import { discoverLayers, ModelError, readLlama2cCheckpoint, readModel } from '../src/index.ts';
import {
  builtModel,
  DEEP16,
  feeds,
  greedy,
  HFSTYLE,
  STORIES260K,
  session,
  storyWindows,
  tempDir,
} from './helpers.ts';

const tokenizer = () => Llama2cTokenizer.fromFile(resolveDataFile('stories260K/tok512.bin'));

test('stories260K built from its llama2.c checkpoint gives the logits of the independent PyTorch export', async () => {
  const ours = builtModel(STORIES260K);
  const theirs = readModel(resolveDataFile(HFSTYLE)).proto;
  const rows = storyWindows(2, 96);
  const a = await (await session(ours)).run(feeds(discoverLayers(ours), rows));
  const b = await (await session(theirs)).run(feeds(discoverLayers(theirs), rows));
  const x = a.logits!.data as Float32Array;
  const y = b.logits!.data as Float32Array;
  assert.equal(x.length, 2 * 96 * 512);
  let maxDiff = 0;
  for (let i = 0; i < x.length; i++) maxDiff = Math.max(maxDiff, Math.abs(x[i]! - y[i]!));
  assert.ok(maxDiff <= 1e-4, `max |Δlogit| = ${maxDiff}`);
});

test('greedy decoding from BOS reproduces the sample text of stories260K and stories-deep16', async () => {
  const expected: Record<string, string> = {
    [STORIES260K]:
      'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.',
    [DEEP16]:
      'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big box with a big box. She wanted to play with it, but it was too late.',
  };
  for (const [file, text] of Object.entries(expected)) {
    const model = builtModel(file);
    const ids = await greedy(await session(model), discoverLayers(model), [1], 90, true);
    assert.ok(tokenizer().decode(ids).startsWith(text), `${file}: ${tokenizer().decode(ids)}`);
  }
});

test('decoding through the KV cache gives the tokens of full re-computation', async () => {
  const model = builtModel(DEEP16);
  const sess = await session(model);
  const layout = discoverLayers(model);
  const prompt = tokenizer().encode('The little dog ran to the');
  assert.deepEqual(
    await greedy(sess, layout, prompt, 24, true),
    await greedy(sess, layout, prompt, 24, false),
  );
});

test('a damaged or foreign checkpoint is refused with the reason', () => {
  const dir = tempDir();
  const truncated = join(dir, 'truncated.bin');
  writeFileSync(truncated, readFileSync(resolveDataFile(STORIES260K)).subarray(0, 50_000));
  assert.throws(
    () => readLlama2cCheckpoint(truncated),
    (err: unknown) => {
      assert.ok(err instanceof ModelError);
      assert.equal(err.code, 'unreadable');
      assert.match(
        err.message,
        /is 50000 bytes; a llama2\.c checkpoint with header 64, 172, 5, 8, 4, 512, 512 has 1056540/,
      );
      return true;
    },
  );
  const v2 = join(dir, 'v2.bin');
  const header = Buffer.alloc(256);
  header.writeUInt32LE(0x616b3432, 0);
  header.writeInt32LE(2, 4);
  writeFileSync(v2, header);
  assert.throws(() => readLlama2cCheckpoint(v2), /version 2 checkpoint; only the legacy/);
  assert.throws(() => readLlama2cCheckpoint(join(dir, 'missing.bin')), /cannot read .*missing\.bin.*ENOENT/);
});
