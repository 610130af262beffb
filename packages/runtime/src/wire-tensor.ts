import { UserError } from '@evop/config';
import { DataType } from '@evop/onnx';
import * as ort from 'onnxruntime-node';

/** A tensor as plain data, so it crosses to a worker thread (buffers transferred, not copied). */
export interface WireTensor {
  type: 'float32' | 'float16' | 'int64' | 'int32' | 'bool';
  data: Float32Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;
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

/** Integer values in the ONNX element type an input declares (int64, or int32 for some exports). */
export function integers(values: ArrayLike<number>, dims: number[], elemType: number): WireTensor {
  if (elemType === DataType.INT32) return { type: 'int32', data: Int32Array.from(values), dims };
  return int64(values, dims);
}

/** Zeros in the floating-point ONNX element type an input declares; zero-length tensors for an empty cache. */
export function floatZeros(dims: number[], elemType: number, name: string): WireTensor {
  const size = dims.reduce((n, d) => n * d, 1);
  if (elemType === DataType.FLOAT16) return { type: 'float16', data: new Uint16Array(size), dims };
  if (elemType === DataType.FLOAT || elemType === 0) return float32(new Float32Array(size), dims);
  throw new UnsupportedInputError(
    `input '${name}' has ONNX element type ${elemType}; evop feeds float32 and float16 caches`,
  );
}

/** A model input of a type evop cannot feed through onnxruntime-node. */
export class UnsupportedInputError extends UserError {
  override readonly name = 'UnsupportedInputError';
}
