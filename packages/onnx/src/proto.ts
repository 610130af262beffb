import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';

/**
 * The ONNX protobuf schema of ONNX 1.23 (IR ≤ 14, `onnx-ml.proto` vendored beside this file), read by protobufjs
 * at load. A schema older than the file it reads drops the fields it does not know (node `metadata_props` of
 * IR 10, say) when the model is written back, so the schema is the newest published one.
 *
 * Decoded messages have every scalar and repeated field set (protobufjs defaults), so the types below make those
 * fields required; nested message fields (`graph`, `type`, attribute `t` / `g`) are typed as present but may be
 * null in a decoded message, and are checked where read. Fields evop never reads are typed `unknown[]` / `unknown`: they are kept, not interpreted.
 */
const root = protobuf.parse(readFileSync(new URL('./onnx-ml.proto', import.meta.url), 'utf8')).root;
const type = (name: string) => root.lookupType(`onnx.${name}`);
const enumValues = (name: string) => root.lookupEnum(`onnx.${name}`).values;

type Long = { low: number; high: number; toNumber(): number };
export type Int64 = number | Long;

export interface StringStringEntryProto {
  key: string;
  value: string;
}

export interface OperatorSetIdProto {
  domain: string;
  version: Int64;
}

export interface TensorShapeDimension {
  dimValue?: Int64 | null;
  dimParam?: string | null;
  denotation?: string;
}

export interface TypeProto {
  tensorType: { elemType: number; shape: { dim: TensorShapeDimension[] } };
  denotation?: string;
  [other: string]: unknown;
}

export interface ValueInfoProto {
  name: string;
  type: TypeProto;
  docString: string;
  metadataProps: StringStringEntryProto[];
}

export interface TensorProto {
  dims: Int64[];
  dataType: number;
  segment?: unknown;
  floatData: number[];
  int32Data: number[];
  stringData: Uint8Array[];
  int64Data: Int64[];
  name: string;
  docString: string;
  rawData: Uint8Array;
  externalData: StringStringEntryProto[];
  dataLocation: number;
  doubleData: number[];
  uint64Data: Int64[];
  metadataProps: StringStringEntryProto[];
}

export interface AttributeProto {
  name: string;
  refAttrName: string;
  docString: string;
  type: number;
  f: number;
  i: Int64;
  s: Uint8Array;
  t: TensorProto;
  g: GraphProto;
  sparseTensor?: unknown;
  tp?: unknown;
  floats: number[];
  ints: Int64[];
  strings: Uint8Array[];
  tensors: TensorProto[];
  graphs: GraphProto[];
  sparseTensors: unknown[];
  typeProtos: unknown[];
}

export interface NodeProto {
  input: string[];
  output: string[];
  name: string;
  opType: string;
  domain: string;
  overload: string;
  attribute: AttributeProto[];
  docString: string;
  metadataProps: StringStringEntryProto[];
  deviceConfigurations: unknown[];
}

export interface GraphProto {
  node: NodeProto[];
  name: string;
  initializer: TensorProto[];
  sparseInitializer: unknown[];
  docString: string;
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
  quantizationAnnotation: unknown[];
  metadataProps: StringStringEntryProto[];
}

export interface ModelProto {
  irVersion: Int64;
  opsetImport: OperatorSetIdProto[];
  producerName: string;
  producerVersion: string;
  domain: string;
  modelVersion: Int64;
  docString: string;
  graph: GraphProto;
  metadataProps: StringStringEntryProto[];
  trainingInfo: unknown[];
  functions: unknown[];
  configuration: unknown[];
}

export const DataType = enumValues('TensorProto.DataType') as Record<
  | 'UNDEFINED'
  | 'FLOAT'
  | 'UINT8'
  | 'INT8'
  | 'UINT16'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'STRING'
  | 'BOOL'
  | 'FLOAT16'
  | 'DOUBLE'
  | 'UINT32'
  | 'UINT64'
  | 'BFLOAT16',
  number
>;
export const DataLocation = enumValues('TensorProto.DataLocation') as Record<'DEFAULT' | 'EXTERNAL', number>;
export const AttrType = enumValues('AttributeProto.AttributeType') as Record<
  'FLOAT' | 'INT' | 'STRING' | 'TENSOR' | 'GRAPH' | 'FLOATS' | 'INTS' | 'STRINGS' | 'TENSORS' | 'GRAPHS',
  number
>;

const Model = type('ModelProto');
const messages = {
  graph: type('GraphProto'),
  node: type('NodeProto'),
  tensor: type('TensorProto'),
  valueInfo: type('ValueInfoProto'),
  attribute: type('AttributeProto'),
  entry: type('StringStringEntryProto'),
};

/** Message constructors with every field defaulted, typed as the decoded messages are. */
export const make = {
  model: (p: Partial<ModelProto>) => Model.create(p) as unknown as ModelProto,
  graph: (p: Partial<GraphProto>) => messages.graph.create(p) as unknown as GraphProto,
  node: (p: Partial<NodeProto>) => messages.node.create(p) as unknown as NodeProto,
  tensor: (p: Partial<TensorProto>) => messages.tensor.create(p) as unknown as TensorProto,
  valueInfo: (p: Partial<ValueInfoProto>) => messages.valueInfo.create(p) as unknown as ValueInfoProto,
  attribute: (p: Partial<AttributeProto>) => messages.attribute.create(p) as unknown as AttributeProto,
  entry: (key: string, value: string) =>
    messages.entry.create({ key, value }) as unknown as StringStringEntryProto,
};

export function decodeModel(bytes: Uint8Array): ModelProto {
  return Model.decode(bytes) as unknown as ModelProto;
}

export function encodeModel(model: ModelProto): Uint8Array {
  return Model.encode(model as unknown as protobuf.Message).finish();
}

/** int64 fields decode as Long objects; everything evop reads from them fits a double. */
export function num(value: Int64 | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : value.toNumber();
}

/** The opset version of the default ONNX domain the model imports. */
export function defaultOpset(model: ModelProto): number {
  const entry = model.opsetImport.find((op) => !op.domain || op.domain === 'ai.onnx');
  return entry ? num(entry.version) : 0;
}
