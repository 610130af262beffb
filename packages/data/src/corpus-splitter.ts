import { CorpusError } from './corpus-error.ts';

/** Marks where a document ends in a corpus's stream of text pieces. */
export const END_OF_DOCUMENT = Symbol('end of document');

/** What a corpus file's text splits into, in order: pieces of a document's text, and the end of each document. */
export type CorpusEvent = string | typeof END_OF_DOCUMENT;

// A blank line (nothing but spaces and tabs) ends a plain-text document.
const SEPARATOR = /\n[ \t]*\n/g;
// The end of a chunk that may be the start of a separator the next chunk completes.
const OPEN_SEPARATOR = /\n[ \t]*$/;

/**
 * Splits a corpus file's text into documents as it is read, chunk by chunk, so that no file (and no huge
 * document) has to be one string: plain text ends a document at a blank line, JSONL has one document per line
 * (its `text` field). A plain-text document longer than a chunk comes out in several pieces; pieces are untrimmed
 * (the reader trims documents and drops empty ones). The split is the one of the whole text: `\r\n` is read as
 * `\n` and a separator or `\r\n` cut by a chunk's end is completed from the next chunk.
 */
export class CorpusSplitter {
  /** Plain text: a partial separator or `\r` held back; JSONL: the parts of the line read so far. */
  private held: string[] = [];
  private line = 0;

  constructor(
    private readonly file: string,
    private readonly jsonl: boolean,
  ) {}

  push(chunk: string): CorpusEvent[] {
    return this.jsonl ? this.jsonlChunk(chunk) : this.textChunk(chunk);
  }

  /** The events of what was held back when the file ends. */
  end(): CorpusEvent[] {
    const rest = this.held.join('');
    this.held = [];
    if (this.jsonl) return rest === '' ? [] : this.jsonlLine(rest);
    return rest === '' ? [END_OF_DOCUMENT] : [rest, END_OF_DOCUMENT];
  }

  private textChunk(chunk: string): CorpusEvent[] {
    let text = this.held.join('') + chunk;
    this.held = [];
    const crAtEnd = text.endsWith('\r');
    if (crAtEnd) text = text.slice(0, -1);
    text = text.replaceAll('\r\n', '\n');
    const events: CorpusEvent[] = [];
    let from = 0;
    for (const match of text.matchAll(SEPARATOR)) {
      if (match.index > from) events.push(text.slice(from, match.index));
      events.push(END_OF_DOCUMENT);
      from = match.index + match[0].length;
    }
    let rest = text.slice(from);
    const open = OPEN_SEPARATOR.exec(rest);
    if (open) {
      this.held.push(open[0]);
      rest = rest.slice(0, open.index);
    }
    if (crAtEnd) this.held.push('\r');
    if (rest !== '') events.push(rest);
    return events;
  }

  private jsonlChunk(chunk: string): CorpusEvent[] {
    const lines = chunk.split('\n');
    if (lines.length === 1) {
      this.held.push(chunk);
      return [];
    }
    const events: CorpusEvent[] = [];
    lines[0] = this.held.join('') + lines[0];
    this.held = [lines.pop()!];
    for (const line of lines) events.push(...this.jsonlLine(line));
    return events;
  }

  private jsonlLine(raw: string): CorpusEvent[] {
    this.line++;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return [];
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (err) {
      throw new CorpusError(`${this.file}:${this.line}: not JSON (${(err as Error).message})`);
    }
    const text = (record as { text?: unknown } | null)?.text;
    if (typeof text !== 'string') throw new CorpusError(`${this.file}:${this.line}: no string "text" field`);
    return [text, END_OF_DOCUMENT];
  }
}
