import { readFileSync } from 'node:fs';
import { type Tokenizer, TokenizerFileError } from './tokenizer.ts';

const BOS = 1;
const EOS = 2;
const BYTE_OFFSET = 3;
const BYTE_PIECE = /^<0x([0-9A-F]{2})>$/;

/**
 * The llama2.c `tokenizer.bin` format (int32 max_token_length, then per token a float32 score, an int32 length and
 * the raw bytes), encoding and decoding exactly as llama2.c's run.c does.
 * Pieces are kept as latin1 strings, one char per byte, so that string comparison is byte comparison.
 */
export class Llama2cTokenizer implements Tokenizer {
  readonly bosId = BOS;
  readonly eosId = EOS;
  private readonly pieces: string[];
  private readonly scores: Float32Array;
  private readonly lookup = new Map<string, number>();

  constructor(pieces: string[], scores: Float32Array) {
    this.pieces = pieces;
    this.scores = scores;
    // run.c bsearches a sorted copy; with unique pieces the first id of a piece is the one it finds.
    pieces.forEach((piece, id) => {
      if (!this.lookup.has(piece)) this.lookup.set(piece, id);
    });
  }

  static fromFile(file: string, vocabSize?: number): Llama2cTokenizer {
    let buf: Buffer;
    try {
      buf = readFileSync(file);
    } catch (err) {
      throw new TokenizerFileError(file, (err as Error).message);
    }
    const pieces: string[] = [];
    const scores: number[] = [];
    let offset = 4;
    const fail = (why: string) =>
      new TokenizerFileError(file, `${why} at byte ${offset} (token ${pieces.length})`);
    if (buf.length < 4) throw fail('file too short for a llama2.c tokenizer');
    while (offset < buf.length && (vocabSize === undefined || pieces.length < vocabSize)) {
      if (offset + 8 > buf.length) throw fail('truncated token header');
      scores.push(buf.readFloatLE(offset));
      const len = buf.readInt32LE(offset + 4);
      offset += 8;
      if (len < 0 || offset + len > buf.length)
        throw fail(`token length ${len} runs past the end of the file`);
      pieces.push(buf.toString('latin1', offset, offset + len));
      offset += len;
    }
    if (vocabSize !== undefined && pieces.length !== vocabSize)
      throw fail(`expected ${vocabSize} tokens, found ${pieces.length}`);
    if (pieces.length <= BYTE_OFFSET + 255)
      throw fail('too few tokens for byte fallback (need at least 259)');
    return new Llama2cTokenizer(pieces, Float32Array.from(scores));
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  encode(text: string, options: { bos?: boolean } = {}): number[] {
    const bytes = Buffer.from(text, 'utf8');
    const tokens: number[] = [];
    if (options.bos ?? true) tokens.push(BOS);
    if (bytes.length > 0) tokens.push(this.idOf(' '));
    // Group the bytes of each UTF-8 code point (at most 4), look the code point up, else fall back to its bytes.
    let start = 0;
    for (let i = 0; i < bytes.length; i++) {
      const next = bytes[i + 1];
      if (next !== undefined && (next & 0xc0) === 0x80 && i + 1 - start < 4) continue;
      const id = this.lookup.get(bytes.toString('latin1', start, i + 1));
      if (id !== undefined) tokens.push(id);
      else for (let b = start; b <= i; b++) tokens.push(bytes[b]! + BYTE_OFFSET);
      start = i + 1;
    }
    return this.merge(tokens);
  }

  /**
   * run.c's merge loop: repeatedly merge the adjacent pair whose merged piece has the highest score, the first
   * such pair on ties, until none merges. Done with a heap over a linked list (O(n log n) rather than run.c's
   * O(n²)), which picks the same pair each time: ties are broken by position, which merging never reorders.
   */
  private merge(tokens: number[]): number[] {
    const n = tokens.length;
    const id = Int32Array.from(tokens);
    const next = Int32Array.from({ length: n }, (_, i) => i + 1);
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const version = new Int32Array(n);
    const heap = new PairHeap();
    const push = (i: number) => {
      const j = next[i]!;
      if (j >= n) return;
      const merged = this.lookup.get(this.pieces[id[i]!]! + this.pieces[id[j]!]!);
      if (merged !== undefined)
        heap.push({
          score: this.scores[merged]!,
          left: i,
          merged,
          leftVersion: version[i]!,
          rightVersion: version[j]!,
        });
    };
    for (let i = 0; i + 1 < n; i++) push(i);
    for (let entry = heap.pop(); entry; entry = heap.pop()) {
      const { left, merged } = entry;
      const right = next[left]!;
      // Stale: either side has merged since this pair was queued.
      if (
        id[left] === -1 ||
        right >= n ||
        entry.leftVersion !== version[left] ||
        entry.rightVersion !== version[right]
      )
        continue;
      id[left] = merged;
      version[left]!++;
      id[right] = -1;
      next[left] = next[right]!;
      if (next[right]! < n) prev[next[right]!] = left;
      if (prev[left]! >= 0) push(prev[left]!);
      push(left);
    }
    const out: number[] = [];
    for (let i = 0; i < n; i = next[i]!) out.push(id[i]!);
    return out;
  }

  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    let prev = -1;
    for (const id of ids) {
      if (id === BOS || id === EOS) {
        prev = id;
        continue;
      }
      let piece = this.pieces[id];
      if (piece === undefined)
        throw new RangeError(`token id ${id} is outside the vocabulary of ${this.vocabSize}`);
      if (prev === BOS && piece.startsWith(' ')) piece = piece.slice(1);
      const byte = BYTE_PIECE.exec(piece);
      if (byte) bytes.push(Number.parseInt(byte[1]!, 16));
      else for (let i = 0; i < piece.length; i++) bytes.push(piece.charCodeAt(i));
      prev = id;
    }
    return Buffer.from(bytes).toString('utf8');
  }

  private idOf(piece: string): number {
    const id = this.lookup.get(piece);
    if (id === undefined) throw new Error(`tokenizer has no piece ${JSON.stringify(piece)}`);
    return id;
  }
}

interface PairEntry {
  score: number;
  /** Position of the pair's left token; merging never reorders tokens, so it orders ties as run.c does. */
  left: number;
  merged: number;
  /** Versions of both tokens when queued: a token that has merged since makes the entry stale. */
  leftVersion: number;
  rightVersion: number;
}

/** A binary max-heap of mergeable pairs: highest score first, then leftmost. */
class PairHeap {
  private readonly items: PairEntry[] = [];

  private before(a: PairEntry, b: PairEntry): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }

  push(entry: PairEntry): void {
    const items = this.items;
    items.push(entry);
    for (let i = items.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): PairEntry | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && this.before(items[l]!, items[best]!)) best = l;
        if (r < items.length && this.before(items[r]!, items[best]!)) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best]!, items[i]!];
        i = best;
      }
    }
    return top;
  }
}
