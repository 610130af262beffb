import { readFileSync } from 'node:fs';
import { UserError } from '@evop/config';

/** A corpus file evop cannot read; names the file, and the line where the problem is when there is one. */
export class CorpusError extends UserError {
  override readonly name = 'CorpusError';
}

/**
 * The documents of a corpus file: JSONL (`.jsonl`: one JSON object per line with a string `text` field) or plain
 * text, where blank lines separate documents. Empty documents are dropped.
 */
export function readCorpus(file: string): string[] {
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CorpusError(`cannot read corpus '${file}': ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  const text = content.replaceAll('\r\n', '\n');
  const docs = file.endsWith('.jsonl') ? jsonlDocuments(file, text) : text.split(/\n[ \t]*\n/);
  const nonEmpty = docs.map((d) => d.trim()).filter((d) => d.length > 0);
  if (nonEmpty.length === 0) throw new CorpusError(`corpus '${file}' has no text`);
  return nonEmpty;
}

function jsonlDocuments(file: string, content: string): string[] {
  const docs: string[] = [];
  content.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (err) {
      throw new CorpusError(`${file}:${i + 1}: not JSON (${(err as Error).message})`);
    }
    const text = (record as { text?: unknown } | null)?.text;
    if (typeof text !== 'string') throw new CorpusError(`${file}:${i + 1}: no string "text" field`);
    docs.push(text);
  });
  return docs;
}
