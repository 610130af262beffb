import * as ort from 'onnxruntime-node';

/** A tensor as plain data, so it crosses to a worker thread (buffers transferred, not copied). */
export interface WireTensor {
  type: 'float32' | 'int64' | 'int32' | 'bool';
  data: Float32Array | BigInt64Array | Int32Array | Uint8Array;
  dims: number[];
}

export type WireFeeds = Record<string, WireTensor>;

export function toOrt(t: WireTensor): ort.Tensor {
  return new ort.Tensor(t.type, t.data as Float32Array, t.dims);
}

export function fromOrt(t: ort.Tensor): WireTensor {
  return { type: t.type as WireTensor['type'], data: t.data as WireTensor['data'], dims: [...t.dims] };
}

export function int64(values: ArrayLike<number>, dims: number[]): WireTensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]!);
  return { type: 'int64', data, dims };
}

export function float32(data: Float32Array, dims: number[]): WireTensor {
  return { type: 'float32', data, dims };
}
