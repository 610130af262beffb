import { createHash } from 'node:crypto';
import type { StreamedDocument } from './corpus.ts';
import { encodeStart } from './encode-start.ts';
import type { Tokenizer } from './tokenizer.ts';

const MAGIC = 'EVOPTOK1';
const HEADER_BYTES = 16;

/**
 * Equal-length token windows in one int32 tensor [count, seqLen], content-addressed by the sha256 of their
 * serialised bytes, so that a set of windows is named by its hash wherever it travels.
 */
export class TokenWindows {
  constructor(
    readonly seqLen: number,
    readonly tokens: Int32Array,
  ) {
    if (!Number.isInteger(seqLen) || seqLen < 2)
      throw new RangeError(`seqLen must be an integer ≥ 2, got ${seqLen}`);
    if (tokens.length % seqLen !== 0)
      throw new RangeError(`${tokens.length} tokens do not split into windows of ${seqLen}`);
  }

  get count(): number {
    return this.tokens.length / this.seqLen;
  }

  window(i: number): Int32Array {
    return this.tokens.subarray(i * this.seqLen, (i + 1) * this.seqLen);
  }

  /** The windows at `indices`, in that order. */
  select(indices: readonly number[]): TokenWindows {
    const out = new Int32Array(indices.length * this.seqLen);
    indices.forEach((w, i) => {
      if (w < 0 || w >= this.count) throw new RangeError(`window ${w} of ${this.count}`);
      out.set(this.window(w), i * this.seqLen);
    });
    return new TokenWindows(this.seqLen, out);
  }

  /** 'EVOPTOK1', uint32 seqLen, uint32 count, then int32 tokens, all little-endian. */
  serialize(): Buffer {
    const buf = Buffer.alloc(HEADER_BYTES + this.tokens.byteLength);
    buf.write(MAGIC, 0, 'latin1');
    buf.writeUInt32LE(this.seqLen, 8);
    buf.writeUInt32LE(this.count, 12);
    Buffer.from(this.tokens.buffer, this.tokens.byteOffset, this.tokens.byteLength).copy(buf, HEADER_BYTES);
    return buf;
  }

  get sha256(): string {
    return createHash('sha256').update(this.serialize()).digest('hex');
  }

  static deserialize(buf: Uint8Array): TokenWindows {
    const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    if (b.length < HEADER_BYTES || b.toString('latin1', 0, 8) !== MAGIC)
      throw new RangeError('not an evop token tensor');
    const seqLen = b.readUInt32LE(8);
    const count = b.readUInt32LE(12);
    if (b.length !== HEADER_BYTES + 4 * seqLen * count)
      throw new RangeError(
        `token tensor of ${count} × ${seqLen} needs ${HEADER_BYTES + 4 * seqLen * count} bytes, has ${b.length}`,
      );
    const tokens = new Int32Array(seqLen * count);
    new Uint8Array(tokens.buffer).set(b.subarray(HEADER_BYTES));
    return new TokenWindows(seqLen, tokens);
  }
}

/**
 * The evaluation protocol of DESIGN.md: each document is tokenized with the model's BOS convention, documents
 * are concatenated, and the stream is cut into non-overlapping windows of `seqLen` tokens (the tail that does not
 * fill a window is dropped). `maxWindows` stops early: documents are then read and tokenized only as far as the
 * windows need (`encodeStart`), so that one huge document costs no more than a small one.
 */
export function windowsFromDocuments(
  docs: Iterable<string | StreamedDocument>,
  tokenizer: Tokenizer,
  seqLen: number,
  maxWindows = Number.POSITIVE_INFINITY,
): TokenWindows {
  const stream: number[] = [];
  const limit = maxWindows * seqLen;
  for (const doc of docs) {
    if (stream.length >= limit) break;
    const pieces = typeof doc === 'string' ? [doc] : doc.pieces;
    for (const id of encodeStart(pieces, tokenizer, limit - stream.length)) stream.push(id);
  }
  const count = Math.min(Math.floor(stream.length / seqLen), maxWindows);
  return new TokenWindows(seqLen, Int32Array.from(stream.slice(0, count * seqLen)));
}
