import { type StreamedDocument, type Tokenizer, TokenWindows, windowsFromDocuments } from '@evop/data';
import { PipelineError } from './pipeline-error.ts';
import type { SearchSpec } from './search-spec.ts';

/** The CCDS pool's size: four candidates per calibration window, plus the held-out windows. */
export const poolSize = (spec: SearchSpec) => 4 * spec.calibration + spec.heldOut;

/**
 * The pool of windows calibration draws from: windows from each corpus in turn, an equal share at most from
 * each, so that mixed corpora are all represented, with the number each gave (`corpusWindows`, in order). Each
 * corpus is read only as far as its share needs.
 */
export function poolWindows(
  corpora: readonly Iterable<string | StreamedDocument>[],
  tokenizer: Tokenizer,
  spec: SearchSpec,
): { pool: TokenWindows; corpusWindows: number[] } {
  const perCorpus = Math.ceil(poolSize(spec) / corpora.length);
  const parts = corpora.map((docs) => windowsFromDocuments(docs, tokenizer, spec.seqLen, perCorpus));
  const tokens = Int32Array.from(parts.flatMap((p) => Array.from(p.tokens)));
  const windows = new TokenWindows(spec.seqLen, tokens);
  if (windows.count < spec.calibration + spec.heldOut)
    throw new PipelineError(
      'data',
      `the corpora give ${windows.count} windows of ${spec.seqLen} tokens; calibration ${spec.calibration} + ` +
        `held-out ${spec.heldOut} need ${spec.calibration + spec.heldOut}`,
    );
  return { pool: windows, corpusWindows: parts.map((p) => p.count) };
}
