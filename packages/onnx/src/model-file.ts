import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, normalize } from 'node:path';
import { ModelError } from './errors.ts';
import {
  DataLocation,
  DataType,
  decodeModel,
  encodeModel,
  type ModelProto,
  make,
  type TensorProto,
} from './proto.ts';
import { elementCount, halfToFloat, inlineTensorBytes, isExternal, tensorByteLength } from './tensor.ts';

/** A model read from disk: its protobuf, and the sha256 of the file and its external data together. */
export interface LoadedModel {
  proto: ModelProto;
  path: string;
  sha256: string;
}

/** Where an external tensor's bytes are; locations are made absolute on read so that writing can copy them. */
interface ExternalRange {
  file: string;
  offset: number;
  length: number;
}

function externalRange(tensor: TensorProto): ExternalRange {
  const entry = (key: string) => tensor.externalData.find((e) => e.key === key)?.value;
  const location = entry('location');
  if (!location)
    throw new ModelError('unreadable', `tensor '${tensor.name}' is external but names no location`);
  const length = entry('length');
  return {
    file: location,
    offset: Number(entry('offset') ?? 0),
    length: length === undefined ? tensorByteLength(tensor) : Number(length),
  };
}

function setExternalRange(tensor: TensorProto, range: ExternalRange): void {
  tensor.externalData = [
    make.entry('location', range.file),
    make.entry('offset', String(range.offset)),
    make.entry('length', String(range.length)),
  ];
}

function readBytes(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ModelError(
      'unreadable',
      `cannot read '${path}': ${(err as NodeJS.ErrnoException).code ?? err}`,
    );
  }
}

/**
 * Reads an ONNX model, checking what a decoder alone cannot: a graph is present and every inline initializer
 * holds as many bytes as its shape says, so that a truncated file is refused here rather than inside onnxruntime.
 */
export function readModel(path: string): LoadedModel {
  const bytes = readBytes(path);
  let proto: ModelProto;
  try {
    proto = decodeModel(bytes);
  } catch (err) {
    throw new ModelError('unreadable', `'${path}' is not an ONNX model (${(err as Error).message})`);
  }
  const graph = proto.graph;
  if (!graph || graph.node.length === 0 || proto.opsetImport.length === 0)
    throw new ModelError('unreadable', `'${path}' is not an ONNX model (no graph, nodes or opset import)`);

  const hash = createHash('sha256').update(bytes);
  const dir = dirname(path);
  const externalFiles = new Set<string>();
  for (const tensor of graph.initializer) {
    if (isExternal(tensor)) {
      const range = externalRange(tensor);
      const location = normalize(range.file);
      if (isAbsolute(location) || location.startsWith('..'))
        throw new ModelError(
          'unreadable',
          `tensor '${tensor.name}' points outside the model folder: '${range.file}'`,
        );
      range.file = join(dir, location);
      setExternalRange(tensor, range);
      externalFiles.add(range.file);
      continue;
    }
    const inline = inlineTensorBytes(tensor);
    const expected = tensorByteLength(tensor);
    if (inline && expected > 0 && inline.length !== expected)
      throw new ModelError(
        'unreadable',
        `'${path}' is damaged: initializer '${tensor.name}' holds ${inline.length} bytes, its shape needs ${expected}`,
      );
  }
  const sizes = new Map([...externalFiles].sort().map((file) => [file, hashFile(hash, file)]));
  for (const tensor of graph.initializer) {
    if (!isExternal(tensor)) continue;
    const range = externalRange(tensor);
    if (range.offset + range.length > sizes.get(range.file)!)
      throw new ModelError(
        'unreadable',
        `external data '${range.file}' ends before tensor '${tensor.name}' does`,
      );
  }
  return { proto, path, sha256: hash.digest('hex') };
}

export interface WriteOptions {
  /**
   * Where initializers go: `inline` in the .onnx file, `external` (every tensor of 1 KiB or more) in one
   * `<file>.data` beside it, or `auto` (default): external when the source had external data or the weights
   * exceed 1.5 GiB, since protobuf cannot hold more than 2 GiB.
   */
  externalData?: 'auto' | 'inline' | 'external';
}

const EXTERNAL_MIN_BYTES = 1024;
const AUTO_EXTERNAL_BYTES = 1.5 * 2 ** 30;
const ALIGNMENT = 64;

/**
 * Writes a model and its external data atomically: into temporary files renamed into place only when all is
 * written, so a failure never leaves a partial model. Returns the paths written.
 */
export function writeModel(proto: ModelProto, path: string, options: WriteOptions = {}): string[] {
  const tensors = proto.graph?.initializer ?? [];
  const mode = options.externalData ?? 'auto';
  const external =
    mode === 'external' ||
    (mode === 'auto' &&
      (tensors.some(isExternal) ||
        tensors.reduce((n, t) => n + tensorByteLength(t), 0) > AUTO_EXTERNAL_BYTES));
  const dataName = `${basename(path)}.data`;
  const dataPath = join(dirname(path), dataName);
  const suffix = `.tmp-${process.pid}-${Date.now()}`;
  const written: string[] = [];
  // Tensors are written into a copy of the initializer list so that the caller's model is left as it was.
  const saved = tensors.map((t) => make.tensor({ ...t }));
  try {
    let fd: number | undefined;
    let offset = 0;
    for (const tensor of saved) {
      // Tensors the source kept external stay external, however small.
      const move = external && (isExternal(tensor) || tensorByteLength(tensor) >= EXTERNAL_MIN_BYTES);
      if (!isExternal(tensor) && !move) continue;
      const bytes = isExternal(tensor) ? readExternal(externalRange(tensor)) : inlineTensorBytes(tensor);
      if (!bytes) continue;
      if (!move) {
        tensor.rawData = bytes;
        tensor.dataLocation = DataLocation.DEFAULT;
        tensor.externalData = [];
        continue;
      }
      if (fd === undefined) {
        fd = openSync(dataPath + suffix, 'w');
        written.push(dataPath);
      }
      offset = Math.ceil(offset / ALIGNMENT) * ALIGNMENT;
      writeSync(fd, bytes, 0, bytes.length, offset);
      clearTypedData(tensor);
      tensor.dataLocation = DataLocation.EXTERNAL;
      setExternalRange(tensor, { file: dataName, offset, length: bytes.length });
      offset += bytes.length;
    }
    if (fd !== undefined) closeSync(fd);
    const out = make.model({ ...proto, graph: make.graph({ ...proto.graph, initializer: saved }) });
    const fdModel = openSync(path + suffix, 'w');
    writeSync(fdModel, encodeModel(out));
    closeSync(fdModel);
    written.unshift(path);
    for (const file of written) renameSync(file + suffix, file);
    return written;
  } catch (err) {
    for (const file of [path, dataPath]) rmSync(file + suffix, { force: true });
    throw err;
  }
}

function clearTypedData(tensor: TensorProto): void {
  tensor.rawData = new Uint8Array(0);
  tensor.floatData = [];
  tensor.int32Data = [];
  tensor.int64Data = [];
  tensor.doubleData = [];
  tensor.uint64Data = [];
}

/** Feeds a file to the hash in chunks (external data may exceed what one Buffer holds); returns its size. */
function hashFile(hash: Hash, path: string): number {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new ModelError(
      'unreadable',
      `cannot read external data '${path}': ${(err as NodeJS.ErrnoException).code}`,
    );
  }
  try {
    const chunk = Buffer.alloc(1 << 24);
    let size = 0;
    for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) {
      hash.update(chunk.subarray(0, n));
      size += n;
    }
    return size;
  } finally {
    closeSync(fd);
  }
}

function readExternal(range: ExternalRange): Uint8Array {
  const fd = openSync(range.file, 'r');
  try {
    const buf = Buffer.alloc(range.length);
    const n = readSync(fd, buf, 0, range.length, range.offset);
    if (n !== range.length)
      throw new ModelError(
        'unreadable',
        `external data '${range.file}' ends before byte ${range.offset + range.length}`,
      );
    return buf;
  } finally {
    closeSync(fd);
  }
}

/**
 * `count` values spread evenly over a floating-point tensor (first, …, last), read without loading the tensor:
 * inline bytes, or a few reads at their offsets in the external data. For fingerprints of multi-GB weights.
 */
export function sampleTensor(tensor: TensorProto, count: number): number[] {
  const size = elementCount(tensor);
  const width = BYTES_PER_FLOAT[tensor.dataType];
  if (!width) throw new ModelError('unsupported-format', `tensor '${tensor.name}' is not floating-point`);
  const indices = Array.from({ length: Math.min(count, size) }, (_, i) =>
    Math.floor((i * (size - 1)) / Math.max(1, Math.min(count, size) - 1)),
  );
  const bytes = indices.map((index) => {
    if (!isExternal(tensor)) return inlineTensorBytes(tensor)!.subarray(index * width, (index + 1) * width);
    const range = externalRange(tensor);
    return readExternal({ file: range.file, offset: range.offset + index * width, length: width });
  });
  return bytes.map((b) => decodeFloat(tensor.dataType, Buffer.from(b)));
}

const BYTES_PER_FLOAT: Record<number, number> = {
  [DataType.FLOAT]: 4,
  [DataType.FLOAT16]: 2,
  [DataType.BFLOAT16]: 2,
  [DataType.DOUBLE]: 8,
};

function decodeFloat(type: number, bytes: Buffer): number {
  if (type === DataType.FLOAT) return bytes.readFloatLE(0);
  if (type === DataType.DOUBLE) return bytes.readDoubleLE(0);
  if (type === DataType.FLOAT16) return halfToFloat(new Uint16Array([bytes.readUInt16LE(0)]))[0]!;
  // bfloat16: the upper half of a float32.
  const word = Buffer.alloc(4);
  word.writeUInt16LE(bytes.readUInt16LE(0), 2);
  return word.readFloatLE(0);
}
