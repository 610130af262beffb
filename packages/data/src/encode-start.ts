import type { Tokenizer } from './tokenizer.ts';

// Characters of a document tokenized first, per token wanted (generous: tokens average under 5 characters).
const CHARS_PER_TOKEN = 8;

/**
 * The tokens of a document (BOS first, as `encode` gives them), or at least its first `wanted` ones: a long
 * document is tokenized only up to a prefix that gives enough tokens, the prefix doubled until it does, so the
 * work is bounded by `wanted` rather than by the document.
 *
 * A prefix is cut just before a space that follows a non-space, where subword tokenizers (BPE split at
 * whitespace, SentencePiece) never merge across, so its tokens are exactly the start of the whole document's.
 * Text with no such space in the second half of the prefix is cut at the prefix's end: the same cut for every
 * run, `evop prune` and a service job alike.
 */
export function encodeStart(pieces: Iterable<string>, tokenizer: Tokenizer, wanted: number): number[] {
  const source = pieces[Symbol.iterator]();
  let text = '';
  let exhausted = false;
  for (let chars = Math.max(1024, wanted * CHARS_PER_TOKEN); ; chars *= 2) {
    while (!exhausted && text.length <= chars) {
      const next = source.next();
      if (next.done) exhausted = true;
      else text += next.value;
    }
    if (exhausted && text.length <= chars) return tokenizer.encode(text, { bos: true });
    const ids = tokenizer.encode(text.slice(0, cutBefore(text, chars)), { bos: true });
    if (ids.length >= wanted) return ids;
  }
}

/** Where to cut `text` at most `end` characters in: before a word's space when one is near, else at `end`. */
function cutBefore(text: string, end: number): number {
  for (let i = end; i > end / 2; i--) if (text[i] === ' ' && !/\s/.test(text[i - 1]!)) return i;
  // Never between the two halves of a surrogate pair.
  return /[\uD800-\uDBFF]/.test(text[end - 1]!) ? end - 1 : end;
}
