import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { GraphIndex } from '../src/graph-index.ts';
import { discoverLayers, readModel } from '../src/index.ts';
import { maxPositionsOf } from '../src/position-table.ts';
import { make, type NodeProto } from '../src/proto.ts';
import { floatTensor, int64Tensor } from '../src/tensor.ts';
import { ValueFlow } from '../src/value-flow.ts';
import { zooDir, zooExports } from './hf-zoo.ts';

/** The context `transformers` was configured with, from the checkpoint beside the exports. */
function configuredContext(family: string): number {
  const config = JSON.parse(readFileSync(join(zooDir(), family, 'hf', 'config.json'), 'utf8'));
  return config.n_positions ?? config.max_position_embeddings;
}

test('a learned position table gives the context in every export of GPT-2 and OPT (OPT offsets its rows by 2)', () => {
  for (const family of ['gpt2', 'opt']) {
    const exports = zooExports(family);
    assert.ok(exports.length >= 2, family);
    for (const { kind, path } of exports)
      assert.equal(
        discoverLayers(readModel(path).proto).maxPositions,
        configuredContext(family),
        `${family} ${kind}`,
      );
  }
});

test('rotary models whose angles are computed from frequencies have no context in the graph', () => {
  for (const { kind, path } of zooExports('llama'))
    assert.equal(discoverLayers(readModel(path).proto).maxPositions, undefined, `llama ${kind}`);
});

/** The context `maxPositionsOf` finds in a graph of `nodes` over `inputs` (`table`: 96 rows). */
function gatherGraph(
  inputs: string[],
  nodes: NodeProto[],
  initializers = [floatTensor('table', [96, 8], new Float32Array(768))],
) {
  const graph = make.graph({
    input: inputs.map((name) => make.valueInfo({ name })),
    initializer: initializers,
    node: nodes,
    output: [make.valueInfo({ name: 'rows' })],
  });
  const index = new GraphIndex(graph);
  return maxPositionsOf(index, new ValueFlow(index), new Set(['position_ids', 'attention_mask']));
}

test('a precomputed rotary table gathered by position_ids sets the context, less the offset added to the ids', () => {
  const node = (opType: string, input: string[], output: string) =>
    make.node({ opType, input, output: [output] });
  assert.equal(gatherGraph(['position_ids'], [node('Gather', ['table', 'position_ids'], 'rows')]), 96);
  const offset = int64Tensor('offset', [], [3]);
  assert.equal(
    gatherGraph(
      ['position_ids'],
      [
        node('Add', ['position_ids', 'offset'], 'shifted'),
        node('Cast', ['shifted'], 'ids'),
        node('Gather', ['table', 'ids'], 'rows'),
      ],
      [floatTensor('table', [96, 8], new Float32Array(768)), offset],
    ),
    93,
  );
  // Rows picked by the tokens are a vocabulary, and a constant index picks one row: neither is a position.
  assert.equal(gatherGraph(['input_ids'], [node('Gather', ['table', 'input_ids'], 'rows')]), undefined);
  assert.equal(
    gatherGraph(
      [],
      [node('Gather', ['table', 'offset'], 'rows')],
      [floatTensor('table', [96, 8], new Float32Array(768)), offset],
    ),
    undefined,
  );
});
