import type { DecoderLayout } from './decoder-layout.ts';
import { GraphBuilder, valueInfo } from './graph-builder.ts';
import { eliminateDeadNodes, renameTensors, sortTopologically } from './graph-index.ts';
import { instrument, LAST_LOGITS_OUTPUT, lastPosition } from './instrument.ts';
import { DataType, defaultOpset, type ModelProto, make } from './proto.ts';

export const ORIGINAL_LOGITS_OUTPUT = 'evop_original_logits';

/**
 * The graph that proves a layout before a search relies on it: the search graph at sublayer granularity with its
 * last-position logits (`evop_last_logits`), beside an untouched copy of the original nodes reading the same
 * weights (`evop_original_logits`), so that one session, with one copy of the weights, computes both. With every
 * gate open the two must agree; closing one unit's gate must change the first.
 */
export function selfCheckGraph(model: ModelProto, layout: DecoderLayout): ModelProto {
  const out = instrument(model, layout, { granularity: 'sublayer', lastLogits: true, skipClosed: false });
  const graph = out.graph;
  const original = model.graph.node.map((n) =>
    make.node({ ...n, input: [...n.input], output: [...n.output] }),
  );
  const computed = new Set(original.flatMap((n) => n.output).filter((name) => name !== ''));
  const copy = make.graph({ node: original });
  renameTensors(copy, new Map([...computed].map((name) => [name, `evop_original/${name}`])));
  for (const node of copy.node) node.name = `evop_original/${node.name}`;
  graph.node.push(...copy.node);

  const b = new GraphBuilder(graph, defaultOpset(model));
  const logits = `evop_original/${layout.logits}`;
  const float =
    layout.streamType === DataType.FLOAT
      ? logits
      : b.op('/evop/check', 'Cast', [logits], { to: DataType.FLOAT });
  lastPosition(b, '/evop/check', float, ORIGINAL_LOGITS_OUTPUT);
  graph.output = graph.output.filter((o) => o.name === LAST_LOGITS_OUTPUT);
  graph.output.push(valueInfo(ORIGINAL_LOGITS_OUTPUT, DataType.FLOAT, ['batch_size', layout.vocabSize]));
  eliminateDeadNodes(graph);
  sortTopologically(graph);
  return out;
}
