import onnxProto from 'onnx-proto';

const o = onnxProto.onnx;

/**
 * The ONNX protobuf schema (ONNX 1.10, IR ≤ 8) as protobufjs classes. Decoded messages have every scalar and
 * repeated field set (protobufjs defaults), so the types below make those fields required; nested message
 * fields (`graph`, `type`, attribute `t` / `g`) may still be null and are checked where read.
 */
type Long = { low: number; high: number; toNumber(): number };
export type Defined<T> = T extends Uint8Array
  ? Uint8Array
  : T extends Long
    ? T
    : T extends (infer U)[]
      ? Defined<U>[]
      : T extends object
        ? { -readonly [K in keyof T]-?: Defined<Exclude<T[K], null | undefined>> }
        : T;

export type ModelProto = Defined<onnxProto.onnx.IModelProto>;
export type GraphProto = Defined<onnxProto.onnx.IGraphProto>;
export type NodeProto = Defined<onnxProto.onnx.INodeProto>;
export type TensorProto = Defined<onnxProto.onnx.ITensorProto>;
export type ValueInfoProto = Defined<onnxProto.onnx.IValueInfoProto>;
export type AttributeProto = Defined<onnxProto.onnx.IAttributeProto>;
export type StringStringEntryProto = Defined<onnxProto.onnx.IStringStringEntryProto>;

export const DataType = o.TensorProto.DataType;
export const DataLocation = o.TensorProto.DataLocation;
export const AttrType = o.AttributeProto.AttributeType;

/** Message constructors with every field defaulted, typed as the decoded messages are. */
export const make = {
  model: (p: onnxProto.onnx.IModelProto) => o.ModelProto.create(p) as unknown as ModelProto,
  graph: (p: onnxProto.onnx.IGraphProto) => o.GraphProto.create(p) as unknown as GraphProto,
  node: (p: onnxProto.onnx.INodeProto) => o.NodeProto.create(p) as unknown as NodeProto,
  tensor: (p: onnxProto.onnx.ITensorProto) => o.TensorProto.create(p) as unknown as TensorProto,
  valueInfo: (p: onnxProto.onnx.IValueInfoProto) => o.ValueInfoProto.create(p) as unknown as ValueInfoProto,
  attribute: (p: onnxProto.onnx.IAttributeProto) => o.AttributeProto.create(p) as unknown as AttributeProto,
  entry: (key: string, value: string) =>
    o.StringStringEntryProto.create({ key, value }) as unknown as StringStringEntryProto,
};

export function decodeModel(bytes: Uint8Array): ModelProto {
  return o.ModelProto.decode(bytes) as unknown as ModelProto;
}

export function encodeModel(model: ModelProto): Uint8Array {
  return o.ModelProto.encode(model).finish();
}

/** int64 fields decode as Long objects; everything evop reads from them fits a double. */
export function num(value: number | Long | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : value.toNumber();
}

/** The opset version of the default ONNX domain the model imports. */
export function defaultOpset(model: ModelProto): number {
  const entry = model.opsetImport.find((op) => !op.domain || op.domain === 'ai.onnx');
  return entry ? num(entry.version) : 0;
}
