/**
 * The body of each calibration thread (run by piscina, `CalibrationThreads`): the CPU-heavy steps of calibration
 * that a service's event loop must not run — reading and tokenizing the corpus into the pool, CCDS's k-means.
 */
import { corpusDocuments, loadTokenizer, TokenWindows, windowsFromDocuments } from '@evop/data';
import { type Calibration, calibrate } from './calibration.ts';
import { poolWindows } from './pool-windows.ts';
import type { SearchSpec } from './search-spec.ts';

export type CalibrationTask =
  | { op: 'pool'; corpora: string[]; tokenizer: string; spec: SearchSpec }
  | { op: 'windows'; corpus: string; tokenizer: string; seqLen: number; count: number }
  | {
      op: 'calibrate';
      spec: SearchSpec;
      seqLen: number;
      pool: Int32Array;
      states?: Float32Array;
      hiddenSize: number;
    };

export interface PoolResult {
  tokens: Int32Array;
  corpusWindows: number[];
  bos: boolean;
}

export default function run(task: CalibrationTask): PoolResult | Calibration | Int32Array {
  if (task.op === 'calibrate')
    return calibrate(task.spec, new TokenWindows(task.seqLen, task.pool), task.states, task.hiddenSize);
  const tokenizer = loadTokenizer(task.tokenizer);
  if (task.op === 'windows')
    return windowsFromDocuments(corpusDocuments(task.corpus), tokenizer, task.seqLen, task.count).tokens;
  const { pool, corpusWindows } = poolWindows(task.corpora.map(corpusDocuments), tokenizer, task.spec);
  return { tokens: pool.tokens, corpusWindows, bos: tokenizer.bosId !== undefined };
}
