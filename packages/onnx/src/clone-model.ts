import { type ModelProto, make } from './proto.ts';

/**
 * A copy of a model that graph surgery may edit freely: nodes, value infos and the lists holding them are new,
 * while tensor data (the bulk of a model) is shared, never copied.
 */
export function cloneForEdit(model: ModelProto): ModelProto {
  const g = model.graph!;
  const graph = make.graph({
    ...g,
    node: g.node.map((n) => make.node({ ...n, input: [...n.input], output: [...n.output] })),
    initializer: g.initializer.map((t) => make.tensor({ ...t })),
    input: g.input.map((v) => make.valueInfo({ ...v })),
    output: g.output.map((v) => make.valueInfo({ ...v })),
    valueInfo: g.valueInfo.map((v) => make.valueInfo({ ...v })),
  });
  return make.model({
    ...model,
    graph,
    metadataProps: model.metadataProps.map((p) => make.entry(p.key, p.value)),
  });
}

/** Sets (or replaces) metadata entries of a model. */
export function setMetadata(model: ModelProto, entries: Record<string, string>): void {
  model.metadataProps = model.metadataProps.filter((p) => !(p.key in entries));
  for (const [key, value] of Object.entries(entries)) model.metadataProps.push(make.entry(key, value));
}
