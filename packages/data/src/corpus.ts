import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { CorpusError } from './corpus-error.ts';
import { type CorpusEvent, CorpusSplitter, END_OF_DOCUMENT } from './corpus-splitter.ts';

export { CorpusError };

/** A document whose text is read lazily, piece by piece: a huge one is read only as far as it is used. */
export interface StreamedDocument {
  readonly pieces: Iterable<string>;
}

const CHUNK_BYTES = 1 << 20;

const cannotRead = (file: string, err: unknown) =>
  new CorpusError(`cannot read corpus '${file}': ${(err as NodeJS.ErrnoException).code ?? err}`);

/**
 * The documents of a corpus file: JSONL (`.jsonl`: one JSON object per line with a string `text` field) or plain
 * text, where blank lines separate documents. Documents are trimmed; empty ones are dropped.
 */
export function readCorpus(file: string): string[] {
  return Array.from(corpusDocuments(file), (doc) => [...doc.pieces].join(''));
}

/**
 * `readCorpus`'s documents, read from the file as they are used: each document's text comes in pieces, and
 * what a consumer stops before is never read (a pool of windows needs only the start of a 150 MB corpus). Reads
 * synchronously: for `evop` and worker threads, not for a server's event loop (`countCorpusDocuments` is).
 */
export function* corpusDocuments(file: string): Generator<StreamedDocument> {
  let count = 0;
  for (const doc of documentsOf(syncEvents(file))) {
    count++;
    yield doc;
  }
  if (count === 0) throw new CorpusError(`corpus '${file}' has no text`);
}

/** How many documents the corpus file has, read as a stream without blocking the event loop. */
export async function countCorpusDocuments(file: string): Promise<number> {
  const splitter = new CorpusSplitter(file, isJsonl(file));
  let count = 0;
  let text = false; // whether the current document has any text yet
  const tally = (events: CorpusEvent[]) => {
    for (const e of events) {
      if (e !== END_OF_DOCUMENT) text ||= /\S/.test(e);
      else if (text) {
        count++;
        text = false;
      }
    }
  };
  try {
    for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: CHUNK_BYTES }))
      tally(splitter.push(chunk as string));
  } catch (err) {
    if (err instanceof CorpusError) throw err;
    throw cannotRead(file, err);
  }
  tally(splitter.end());
  if (count === 0) throw new CorpusError(`corpus '${file}' has no text`);
  return count;
}

const isJsonl = (file: string) => file.endsWith('.jsonl');

/** The file's events, read a chunk at a time; the file is closed when the consumer stops. */
function* syncEvents(file: string): Generator<CorpusEvent> {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw cannotRead(file, err);
  }
  try {
    const splitter = new CorpusSplitter(file, isJsonl(file));
    const decoder = new StringDecoder('utf8');
    const buf = Buffer.alloc(CHUNK_BYTES);
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        throw cannotRead(file, err);
      }
      if (n === 0) break;
      yield* splitter.push(decoder.write(buf.subarray(0, n)));
    }
    yield* splitter.push(decoder.end());
    yield* splitter.end();
  } finally {
    closeSync(fd);
  }
}

/**
 * Documents from a stream of events: leading and trailing whitespace trimmed (trailing whitespace is held back
 * until more text follows), documents with no text dropped. A document its consumer left unfinished is skipped
 * to its end before the next one starts.
 */
function* documentsOf(events: Iterator<CorpusEvent>): Generator<StreamedDocument> {
  for (;;) {
    let first = '';
    for (;;) {
      const e = events.next();
      if (e.done) return;
      if (e.value !== END_OF_DOCUMENT) first = e.value.trimStart();
      if (first !== '') break;
    }
    let ended = false;
    function* pieces(): Generator<string> {
      let held = '';
      for (let piece: CorpusEvent = first; ; ) {
        const body = piece.trimEnd();
        if (body !== '') {
          yield held + body;
          held = piece.slice(body.length);
        } else held += piece;
        const e = events.next();
        if (e.done || e.value === END_OF_DOCUMENT) break;
        piece = e.value;
      }
      ended = true;
    }
    yield { pieces: pieces() };
    while (!ended) {
      const e = events.next();
      ended = e.done === true || e.value === END_OF_DOCUMENT;
    }
  }
}
