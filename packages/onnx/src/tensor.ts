import { DataLocation, DataType, make, num, type TensorProto } from './proto.ts';

const BYTES_PER_ELEMENT: Record<number, number> = {
  [DataType.FLOAT]: 4,
  [DataType.UINT8]: 1,
  [DataType.INT8]: 1,
  [DataType.UINT16]: 2,
  [DataType.INT16]: 2,
  [DataType.INT32]: 4,
  [DataType.INT64]: 8,
  [DataType.BOOL]: 1,
  [DataType.FLOAT16]: 2,
  [DataType.DOUBLE]: 8,
  [DataType.UINT32]: 4,
  [DataType.UINT64]: 8,
  [DataType.BFLOAT16]: 2,
};

export function elementCount(tensor: TensorProto): number {
  return tensor.dims.reduce<number>((n, d) => n * num(d), 1);
}

/** Bytes of the tensor's values as stored (0 for strings, whose size is not fixed). */
export function tensorByteLength(tensor: TensorProto): number {
  return elementCount(tensor) * (BYTES_PER_ELEMENT[tensor.dataType] ?? 0);
}

export function isExternal(tensor: TensorProto): boolean {
  return tensor.dataLocation === DataLocation.EXTERNAL;
}

/** A float32 initializer with its values inline as raw little-endian bytes. */
export function floatTensor(name: string, dims: number[], values: Float32Array): TensorProto {
  return make.tensor({
    name,
    dims,
    dataType: DataType.FLOAT,
    rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  });
}

export function int64Tensor(name: string, dims: number[], values: number[]): TensorProto {
  const data = BigInt64Array.from(values, (v) => BigInt(v));
  return make.tensor({ name, dims, dataType: DataType.INT64, rawData: new Uint8Array(data.buffer) });
}

/**
 * The raw little-endian bytes of an inline tensor, whichever field holds them: ONNX allows `raw_data` or the
 * typed repeated fields. Undefined for strings and external tensors.
 */
export function inlineTensorBytes(tensor: TensorProto): Uint8Array | undefined {
  if (isExternal(tensor) || tensor.dataType === DataType.STRING) return undefined;
  if (tensor.rawData && tensor.rawData.length > 0) return tensor.rawData;
  const n = elementCount(tensor);
  if (n === 0) return new Uint8Array(0);
  switch (tensor.dataType) {
    case DataType.FLOAT:
      return bytesOf(Float32Array.from(tensor.floatData));
    case DataType.DOUBLE:
      return bytesOf(Float64Array.from(tensor.doubleData));
    case DataType.INT64:
      return bytesOf(BigInt64Array.from(tensor.int64Data, (v) => BigInt(num(v))));
    case DataType.UINT64:
      return bytesOf(BigUint64Array.from(tensor.uint64Data, (v) => BigInt(num(v))));
    case DataType.INT32:
      return bytesOf(Int32Array.from(tensor.int32Data));
    case DataType.INT16:
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return bytesOf(Uint16Array.from(tensor.int32Data));
    case DataType.INT8:
      return bytesOf(Int8Array.from(tensor.int32Data));
    case DataType.UINT8:
    case DataType.BOOL:
      return Uint8Array.from(tensor.int32Data);
    case DataType.UINT32:
      return bytesOf(Uint32Array.from(tensor.uint64Data, (v) => num(v)));
    default:
      return undefined;
  }
}

function bytesOf(array: ArrayBufferView): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** Float32 values of an inline FLOAT tensor. */
export function floatValues(tensor: TensorProto): Float32Array {
  const bytes = inlineTensorBytes(tensor);
  if (tensor.dataType !== DataType.FLOAT || !bytes)
    throw new TypeError(`tensor '${tensor.name}' is not inline float32`);
  const copy = new Uint8Array(bytes);
  return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
}

/** IEEE half-precision values (their bits, as onnxruntime returns float16 tensors) as float32. */
export function halfToFloat(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]!;
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    if (exponent === 0) out[i] = sign * 2 ** -14 * (fraction / 1024);
    else if (exponent === 31) out[i] = fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else out[i] = sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  }
  return out;
}
