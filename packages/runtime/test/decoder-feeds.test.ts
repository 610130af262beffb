import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DataType, type DecoderLayout } from '@evop/onnx';
import { decoderFeeds, UnsupportedInputError } from '../src/index.ts';

/** A layout with every input an export may declare, of the dtypes some exporters give them. */
function layout(pastType: number): DecoderLayout {
  const input = (name: string, elemType: number, shape: (number | string)[]) => ({ name, elemType, shape });
  return {
    version: 2,
    blocks: [],
    layers: 0,
    inputs: [
      input('input_ids', DataType.INT32, ['batch', 'sequence']),
      input('attention_mask', DataType.INT64, ['batch', 'total']),
      input('position_ids', DataType.INT64, ['batch', 'sequence']),
      input('cache_position', DataType.INT64, ['sequence']),
      input('token_type_ids', DataType.INT64, ['batch', 'sequence']),
      input('past_key_values.0.key', pastType, ['batch', 2, 'past', 16]),
    ],
    inputIds: 'input_ids',
    attentionMask: 'attention_mask',
    positionIds: 'position_ids',
    cachePosition: 'cache_position',
    tokenTypeIds: 'token_type_ids',
    logits: 'logits',
    embedding: 'embed',
    vocabSize: 8,
    hiddenSize: 4,
    streamType: DataType.FLOAT,
    finalStream: 'x',
    totalParams: 0,
  };
}

test('feeds follow each input declared dtype, with positions and segment ids for the inputs an export has', () => {
  const fresh = decoderFeeds(layout(DataType.FLOAT16), {
    ids: [5, 6, 7, 1, 2, 3],
    rows: 2,
    seqLen: 3,
    lengths: [3, 2],
  });
  assert.equal(fresh.input_ids!.type, 'int32');
  assert.deepEqual(Array.from(fresh.input_ids!.data as Int32Array), [5, 6, 7, 1, 2, 3]);
  assert.deepEqual(Array.from(fresh.attention_mask!.data as BigInt64Array, Number), [1, 1, 1, 1, 1, 0]);
  assert.deepEqual(Array.from(fresh.cache_position!.data as BigInt64Array, Number), [0, 1, 2]);
  assert.deepEqual(fresh.token_type_ids!.dims, [2, 3]);
  assert.deepEqual(Array.from(fresh.token_type_ids!.data as BigInt64Array, Number), [0, 0, 0, 0, 0, 0]);
  assert.equal(fresh['past_key_values.0.key']!.type, 'float16', 'an fp16 cache is fed as fp16');
  assert.deepEqual(fresh['past_key_values.0.key']!.dims, [2, 2, 0, 16]);

  const next = decoderFeeds(layout(DataType.FLOAT16), { ids: [8], rows: 1, seqLen: 1, pastLength: 3 });
  assert.deepEqual(Array.from(next.position_ids!.data as BigInt64Array, Number), [3]);
  assert.deepEqual(Array.from(next.cache_position!.data as BigInt64Array, Number), [3]);
  assert.deepEqual(next.attention_mask!.dims, [1, 4]);
  assert.ok(!('past_key_values.0.key' in next), 'the cache is carried from the previous run');

  assert.throws(
    () => decoderFeeds(layout(DataType.BFLOAT16), { ids: [1], rows: 1, seqLen: 1 }),
    (err: unknown) => err instanceof UnsupportedInputError && /past_key_values\.0\.key/.test(err.message),
  );
});
