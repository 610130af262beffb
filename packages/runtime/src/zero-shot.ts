import { setImmediate } from 'node:timers/promises';
import type { MultipleChoiceItem, Tokenizer } from '@evop/data';
import type { OnnxEvaluator } from './onnx-evaluator.ts';

export interface ZeroShotItemResult {
  /** Log-likelihood of each choice's continuation given its context. */
  logLikelihoods: number[];
  chosen: number;
  chosenNorm: number;
  gold: number;
}

export interface ZeroShotResult {
  n: number;
  acc: number;
  accStderr: number;
  /** Accuracy when each log-likelihood is divided by its continuation's length in UTF-8 bytes. */
  accNorm: number;
  accNormStderr: number;
  items: ZeroShotItemResult[];
}

function argmax(values: number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** Standard error of a mean of 0/1 outcomes, with the sample (n − 1) variance, as lm-eval-harness reports it. */
function stderr(outcomes: boolean[]): number {
  const n = outcomes.length;
  if (n < 2) return 0;
  const p = outcomes.filter(Boolean).length / n;
  return Math.sqrt((p * (1 - p)) / (n - 1));
}

// Items tokenized between two yields to the event loop.
const ITEMS_PER_SLICE = 64;

/**
 * Each choice's tokens and where its continuation starts, a slice of items at a time: all of a task (HellaSwag's
 * 10,042 items, 4 choices each) takes seconds to tokenize, and meanwhile a worker's event loop must go on renewing
 * its task's lock and hearing the job's cancel, which the signal then brings here.
 */
async function encodeChoices(
  tokenizer: Tokenizer,
  items: readonly MultipleChoiceItem[],
  signal: AbortSignal | undefined,
): Promise<{ ids: number[]; from: number }[]> {
  const requests: { ids: number[]; from: number }[] = [];
  for (let start = 0; start < items.length; start += ITEMS_PER_SLICE) {
    signal?.throwIfAborted();
    for (const item of items.slice(start, start + ITEMS_PER_SLICE))
      for (const { context, continuation } of item.choices) {
        const whole = tokenizer.encode(context + continuation);
        const contextLength = tokenizer.encode(context).length;
        requests.push({ ids: whole, from: Math.min(contextLength, whole.length - 1) });
      }
    await setImmediate();
  }
  return requests;
}

/**
 * Zero-shot multiple choice scored like lm-eval-harness: the continuation's tokens are those of
 * encode(context + continuation) past the tokens of encode(context), and each choice's score is their summed
 * log-likelihood; `acc` takes the best score, `acc_norm` the best score per byte of continuation.
 */
export async function scoreMultipleChoice(
  evaluator: OnnxEvaluator,
  tokenizer: Tokenizer,
  items: readonly MultipleChoiceItem[],
  mask?: string,
  signal?: AbortSignal,
): Promise<ZeroShotResult> {
  const requests = await encodeChoices(tokenizer, items, signal);
  const lls = await evaluator.logLikelihoods(requests, mask, signal);
  let next = 0;
  const results = items.map((item) => {
    const logLikelihoods = item.choices.map(() => lls[next++]!);
    const perByte = logLikelihoods.map((ll, c) => ll / Buffer.byteLength(item.choices[c]!.continuation));
    return { logLikelihoods, chosen: argmax(logLikelihoods), chosenNorm: argmax(perByte), gold: item.gold };
  });
  const correct = results.map((r) => r.chosen === r.gold);
  const correctNorm = results.map((r) => r.chosenNorm === r.gold);
  return {
    n: results.length,
    acc: correct.filter(Boolean).length / results.length,
    accStderr: stderr(correct),
    accNorm: correctNorm.filter(Boolean).length / results.length,
    accNormStderr: stderr(correctNorm),
    items: results,
  };
}
