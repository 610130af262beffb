import { rmSync } from 'node:fs';
import { resolveDataFile } from '@evop/config';
import { main } from './main.ts';

/** The demo settings: small enough for about three minutes on two cores. */
export const DEMO_ARGS = [
  '--sparsity',
  '0.25',
  '--strategy',
  'evop',
  '--baselines',
  '--seq-len',
  '128',
  '--calibration',
  '16',
  '--held-out',
  '32',
  '--budget',
  '200',
  '--seed',
  '0',
];

/**
 * `npm run demo`: prunes 25 % of stories-deep16's 16 layers with evop and the peer methods on the TinyStories
 * sample, and prints the comparison table. Output in ./demo-output (replaced on each run).
 */
export async function runDemo(out = 'demo-output'): Promise<number> {
  rmSync(out, { recursive: true, force: true });
  return main([
    'prune',
    '--model',
    resolveDataFile('stories-deep16/stories-deep16.bin'),
    '--tokenizer',
    resolveDataFile('stories-deep16/tok512.bin'),
    '--data',
    resolveDataFile('tinystories-valid-sample/tinystories_val.txt'),
    ...DEMO_ARGS,
    '--out',
    out,
  ]);
}
