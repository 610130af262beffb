import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { type FileHandle, open, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize } from 'node:path';
import { linkOrCopy } from '@evop/data';
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
  const size = tensorByteLength(tensor);
  const range = {
    file: location,
    offset: byteCount(tensor, 'offset', 0),
    length: byteCount(tensor, 'length', size),
  };
  // onnxruntime reads as many bytes as the shape needs: another length is a forged or damaged entry.
  if (size > 0 && range.length !== size)
    throw new ModelError(
      'unreadable',
      `tensor '${tensor.name}' has external data length ${range.length}; its shape needs ${size} bytes`,
    );
  return range;
}

/**
 * An external-data `offset` or `length` as written by ONNX's own writer: decimal digits. Anything else (NaN,
 * negative, empty, `1e3`, `0x10`, padded) is refused: JavaScript's Number() would take some of them, onnxruntime's
 * parser would read others differently, and a worker would then fail on raw Node or onnxruntime errors.
 */
function byteCount(tensor: TensorProto, key: 'offset' | 'length', absent: number): number {
  const value = tensor.externalData.find((e) => e.key === key)?.value;
  if (value === undefined) return absent;
  const n = /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n))
    throw new ModelError(
      'unreadable',
      `tensor '${tensor.name}' has external data ${key} '${value}'; it must be a whole number of bytes ≥ 0`,
    );
  return n;
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

export interface ReadOptions {
  /**
   * The sha256 of the model's files by file name (the .onnx file's and each external-data file's), when they are
   * known already (an upload hashed on its way in, a verified artifact): nothing is read to hash it again.
   */
  fileSha256?: Record<string, string>;
  /** The model's identity (`modelSha256`) when known already: no file is hashed. */
  sha256?: string;
}

/**
 * The model's identity: sha256 over its files' sha256 and names (the .onnx file first, then its external data
 * by name), so that it follows from per-file hashes however the files arrived.
 */
export function modelSha256(
  onnx: { name: string; sha256: string },
  external: { name: string; sha256: string }[],
): string {
  const lines = [onnx, ...[...external].sort((a, b) => a.name.localeCompare(b.name))].map(
    (f) => `${f.sha256}  ${f.name}\n`,
  );
  return createHash('sha256').update(lines.join('')).digest('hex');
}

/**
 * Reads an ONNX model, checking what a decoder alone cannot: a graph is present, every inline initializer holds
 * as many bytes as its shape says and every external one lies within its file, so that a truncated or forged
 * file is refused here rather than inside onnxruntime. External data is never read whole: its files are hashed
 * in chunks, or not at all when `options.fileSha256` knows them.
 */
export function readModel(path: string, options: ReadOptions = {}): LoadedModel {
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
  const sizes = new Map([...externalFiles].map((file) => [file, fileSize(file)]));
  for (const tensor of graph.initializer) {
    if (!isExternal(tensor)) continue;
    const range = externalRange(tensor);
    const fileBytes = sizes.get(range.file)!;
    if (range.offset + range.length > fileBytes)
      throw new ModelError(
        'unreadable',
        `tensor '${tensor.name}' has external data offset ${range.offset} and length ${range.length}, past the ` +
          `end of '${basename(range.file)}' (${fileBytes} bytes)`,
      );
  }
  const known = options.fileSha256 ?? {};
  const shaOf = (file: string) => known[basename(file)] ?? hashFileSync(file);
  const sha256 =
    options.sha256 ??
    modelSha256(
      {
        name: basename(path),
        sha256: known[basename(path)] ?? createHash('sha256').update(bytes).digest('hex'),
      },
      [...externalFiles].map((file) => ({ name: basename(file), sha256: shaOf(file) })),
    );
  return { proto, path, sha256 };
}

export interface WriteOptions {
  /**
   * Where initializers go: `inline` in the .onnx file, `external` (every tensor of 1 KiB or more) in one
   * `<file>.data` beside it, `auto` (default): external when the source had external data or the weights
   * exceed 1.5 GiB, since protobuf cannot hold more than 2 GiB; or `reference`: tensors already external keep
   * their bytes where they are, the data files hard-linked beside the new model (copied once across devices),
   * for graphs derived from a model that must not copy its weights.
   */
  externalData?: 'auto' | 'inline' | 'external' | 'reference';
}

const EXTERNAL_MIN_BYTES = 1024;
const AUTO_EXTERNAL_BYTES = 1.5 * 2 ** 30;
const ALIGNMENT = 64;
// onnxruntime maps external initializers into memory instead of copying them when their offset is page-aligned.
const PAGE = 4096;
const PAGE_ALIGNED_BYTES = 1 << 20;
const COPY_CHUNK = 1 << 24;

/** What writing a model does, decided before any byte is written: the same for the sync and async writers. */
interface WritePlan {
  /** The files written, each first under `<file><suffix>`, renamed into place when all is written. */
  files: string[];
  suffix: string;
  /** The external-data file and what goes into it, where. */
  data?: { path: string; copies: { source: ExternalRange | Uint8Array; at: number }[] };
  model: { path: string; bytes: Uint8Array };
}

function planWrite(proto: ModelProto, path: string, options: WriteOptions): WritePlan {
  const tensors = proto.graph?.initializer ?? [];
  const mode = options.externalData ?? 'auto';
  const external =
    mode === 'external' ||
    (mode === 'auto' &&
      (tensors.some(isExternal) ||
        tensors.reduce((n, t) => n + tensorByteLength(t), 0) > AUTO_EXTERNAL_BYTES));
  const dataName = `${basename(path)}.data`;
  const copies: { source: ExternalRange | Uint8Array; at: number }[] = [];
  // Tensors are written into a copy of the initializer list so that the caller's model is left as it was.
  const saved = tensors.map((t) => make.tensor({ ...t }));
  mkdirSync(dirname(path), { recursive: true });
  if (mode === 'reference') referenceExternalData(saved, dirname(path));
  let offset = 0;
  for (const tensor of saved) {
    if (mode === 'reference') break;
    // Tensors the source kept external stay external, however small.
    const move = external && (isExternal(tensor) || tensorByteLength(tensor) >= EXTERNAL_MIN_BYTES);
    if (!isExternal(tensor) && !move) continue;
    if (!move) {
      tensor.rawData = readExternal(externalRange(tensor));
      tensor.dataLocation = DataLocation.DEFAULT;
      tensor.externalData = [];
      continue;
    }
    const length = isExternal(tensor) ? externalRange(tensor).length : tensorByteLength(tensor);
    const alignment = length >= PAGE_ALIGNED_BYTES ? PAGE : ALIGNMENT;
    offset = Math.ceil(offset / alignment) * alignment;
    const source = isExternal(tensor) ? externalRange(tensor) : inlineTensorBytes(tensor);
    if (!source) continue;
    copies.push({ source, at: offset });
    clearTypedData(tensor);
    tensor.dataLocation = DataLocation.EXTERNAL;
    setExternalRange(tensor, { file: dataName, offset, length });
    offset += length;
  }
  const out = make.model({ ...proto, graph: make.graph({ ...proto.graph, initializer: saved }) });
  const data = copies.length > 0 ? { path: join(dirname(path), dataName), copies } : undefined;
  return {
    files: [path, ...(data ? [data.path] : [])],
    suffix: `.tmp-${process.pid}-${Date.now()}`,
    ...(data ? { data } : {}),
    model: { path, bytes: encodeModel(out) },
  };
}

/** Runs `write` for a plan, renaming its files into place only when all is written; a failure leaves none. */
function committed<T extends string[] | Promise<string[]>>(plan: WritePlan, write: () => T): T {
  const clean = (err: unknown): never => {
    for (const file of plan.files) rmSync(file + plan.suffix, { force: true });
    throw err;
  };
  const commit = () => {
    for (const file of plan.files) renameSync(file + plan.suffix, file);
    return plan.files;
  };
  try {
    const done = write();
    return (done instanceof Promise ? done.then(commit, clean) : commit()) as T;
  } catch (err) {
    return clean(err);
  }
}

/**
 * Writes a model and its external data atomically: into temporary files renamed into place only when all is
 * written, so a failure never leaves a partial model. External bytes are copied in chunks, never held whole.
 * Returns the paths written.
 */
export function writeModel(proto: ModelProto, path: string, options: WriteOptions = {}): string[] {
  const plan = planWrite(proto, path, options);
  return committed(plan, () => {
    if (plan.data) {
      const fd = openSync(plan.data.path + plan.suffix, 'w');
      try {
        for (const { source, at } of plan.data.copies)
          if (source instanceof Uint8Array) writeSync(fd, source, 0, source.length, at);
          else copyRange(source, fd, at);
      } finally {
        closeSync(fd);
      }
    }
    writeFileSync(plan.model.path + plan.suffix, plan.model.bytes);
    return plan.files;
  });
}

/**
 * `writeModel` with its copies awaited chunk by chunk: for a process whose event loop must go on (a worker
 * renewing its task's lock while it writes a pruned model of many GiB).
 */
export async function writeModelAsync(
  proto: ModelProto,
  path: string,
  options: WriteOptions = {},
): Promise<string[]> {
  const plan = planWrite(proto, path, options);
  return committed(plan, async () => {
    if (plan.data) {
      const out = await open(plan.data.path + plan.suffix, 'w');
      try {
        for (const { source, at } of plan.data.copies)
          if (source instanceof Uint8Array) await out.write(source, 0, source.length, at);
          else await copyRangeAsync(source, out, at);
      } finally {
        await out.close();
      }
    }
    await writeFile(plan.model.path + plan.suffix, plan.model.bytes);
    return plan.files;
  });
}

/**
 * Points external tensors at their data files linked into `dir` under their own names (a name already taken by
 * another file gets a numbered one), so that a model written there finds them without a copy.
 */
function referenceExternalData(tensors: TensorProto[], dir: string): void {
  mkdirSync(dir, { recursive: true });
  const linked = new Map<string, string>();
  for (const tensor of tensors) {
    if (!isExternal(tensor)) continue;
    const range = externalRange(tensor);
    let name = linked.get(range.file);
    if (name === undefined) {
      const source = statSync(range.file);
      for (let i = 0; ; i++) {
        name = i === 0 ? basename(range.file) : `${basename(range.file)}.${i}`;
        const target = join(dir, name);
        if (!existsSync(target)) {
          linkOrCopy(range.file, target);
          break;
        }
        if (statSync(target).ino === source.ino) break;
      }
      linked.set(range.file, name);
    }
    setExternalRange(tensor, { ...range, file: name });
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

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch (err) {
    throw new ModelError(
      'unreadable',
      `cannot read external data '${path}': ${(err as NodeJS.ErrnoException).code}`,
    );
  }
}

/** sha256 of a file read in chunks (external data may exceed what one Buffer holds). */
function hashFileSync(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.alloc(1 << 24);
    for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) hash.update(chunk.subarray(0, n));
    return hash.digest('hex');
  } finally {
    closeSync(fd);
  }
}

const endsEarly = (range: ExternalRange) =>
  new ModelError(
    'unreadable',
    `external data '${range.file}' ends before byte ${range.offset + range.length}`,
  );

/** Copies an external range into `fd` at `at`, in chunks. */
function copyRange(range: ExternalRange, fd: number, at: number): void {
  const source = openSync(range.file, 'r');
  try {
    const chunk = Buffer.alloc(Math.min(COPY_CHUNK, Math.max(1, range.length)));
    for (let done = 0; done < range.length; ) {
      const n = readSync(source, chunk, 0, Math.min(chunk.length, range.length - done), range.offset + done);
      if (n === 0) throw endsEarly(range);
      writeSync(fd, chunk, 0, n, at + done);
      done += n;
    }
  } finally {
    closeSync(source);
  }
}

/** `copyRange` for `writeModelAsync`: each chunk read and written without blocking the event loop. */
async function copyRangeAsync(range: ExternalRange, out: FileHandle, at: number): Promise<void> {
  const source = await open(range.file, 'r');
  try {
    const chunk = Buffer.alloc(Math.min(COPY_CHUNK, Math.max(1, range.length)));
    for (let done = 0; done < range.length; ) {
      const { bytesRead: n } = await source.read(
        chunk,
        0,
        Math.min(chunk.length, range.length - done),
        range.offset + done,
      );
      if (n === 0) throw endsEarly(range);
      await out.write(chunk, 0, n, at + done);
      done += n;
    }
  } finally {
    await source.close();
  }
}

function readExternal(range: ExternalRange): Uint8Array {
  const fd = openSync(range.file, 'r');
  try {
    const buf = Buffer.alloc(range.length);
    const n = readSync(fd, buf, 0, range.length, range.offset);
    if (n !== range.length) throw endsEarly(range);
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

const INLINE_WEIGHTS_LIMIT = 64 * 2 ** 20;

/**
 * The model as a base for graphs derived from it (search graph, analysis, self-check) written into `dir`: its
 * external tensors stay where they are (`writeModel(…, { externalData: 'reference' })` links them), and a model
 * whose weights are inline and large has them moved, once, into a data file in `dir`, so that no derived graph
 * carries a copy of the weights.
 */
export function derivableIn(model: LoadedModel, dir: string): ModelProto {
  const tensors = model.proto.graph.initializer;
  if (
    tensors.some(isExternal) ||
    tensors.reduce((n, t) => n + tensorByteLength(t), 0) <= INLINE_WEIGHTS_LIMIT
  )
    return model.proto;
  const path = join(dir, 'weights.onnx');
  if (!existsSync(path)) writeModel(model.proto, path, { externalData: 'external' });
  return readModel(path, { fileSha256: { 'weights.onnx': model.sha256, 'weights.onnx.data': model.sha256 } })
    .proto;
}
