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
    // Greedily merge the adjacent pair whose merged piece has the highest score, first such pair on ties.
    for (;;) {
      let bestScore = -1e10;
      let bestId = -1;
      let bestIdx = -1;
      for (let i = 0; i < tokens.length - 1; i++) {
        const id = this.lookup.get(this.pieces[tokens[i]!]! + this.pieces[tokens[i + 1]!]!);
        if (id !== undefined && this.scores[id]! > bestScore) {
          bestScore = this.scores[id]!;
          bestId = id;
          bestIdx = i;
        }
      }
      if (bestIdx === -1) break;
      tokens.splice(bestIdx, 2, bestId);
    }
    return tokens;
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
