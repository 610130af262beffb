import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveDataFile } from '@evop/config';

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'evop.js');

export const tempDir = () => mkdtempSync(join(tmpdir(), 'evop-cli-test-'));

export const data = {
  model: resolveDataFile('stories260K/stories260K.bin'),
  deep16: resolveDataFile('stories-deep16/stories-deep16.bin'),
  tokenizer: resolveDataFile('stories260K/tok512.bin'),
  stories: resolveDataFile('tinystories-valid-sample/tinystories_val.txt'),
};

/** A small, quick prune of stories260K. */
export function smallPrune(out: string, extra: string[] = []): string[] {
  return [
    'prune',
    '--model',
    data.model,
    '--tokenizer',
    data.tokenizer,
    '--data',
    data.stories,
    '--remove',
    '2',
    '--granularity',
    'sublayer',
    '--budget',
    '60',
    '--calibration',
    '8',
    '--held-out',
    '8',
    '--seq-len',
    '64',
    '--seed',
    '3',
    '--out',
    out,
    ...extra,
  ];
}

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the `evop` command as a user would, in its own process (with `env` added to the environment). */
export function evop(
  args: string[],
  onStart?: (child: ChildProcess) => void,
  env: NodeJS.ProcessEnv = {},
): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      // Latency rounds stop after 1 s a phase (20 s by default): enough rounds for an interval, whatever its width.
      env: { ...process.env, EVOP_PROVIDER: 'cpu', EVOP_LATENCY_MAX_SECONDS: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    onStart?.(child);
  });
}
