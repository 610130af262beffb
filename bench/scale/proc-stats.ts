import { readFileSync } from 'node:fs';

export interface ProcessStats {
  /** Peak resident set (VmHWM), MiB: a file mapped twice (two sessions of one model) counts twice. */
  peakRssMiB: number;
  /** Peak proportional set size (sampled), MiB: each physical page once, the memory the process really holds. */
  peakPssMiB: number;
  /** Bytes the process caused to be written to storage (/proc/<pid>/io write_bytes). */
  writtenBytes: number;
}

function sample(pid: number, previous: ProcessStats): ProcessStats | undefined {
  try {
    const kib = (file: string, field: string) =>
      Number(readFileSync(`/proc/${pid}/${file}`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+)`, 'm'))![1]);
    return {
      peakRssMiB: kib('status', 'VmHWM') / 1024,
      peakPssMiB: Math.max(previous.peakPssMiB, kib('smaps_rollup', 'Pss') / 1024),
      writtenBytes: kib('io', 'write_bytes'),
    };
  } catch {
    return undefined; // the process has exited: its last sample stands
  }
}

/**
 * Follows a process's peak RSS and PSS and bytes written (Linux /proc), sampling every 200 ms until `stop()`; the
 * kernel keeps the peak RSS and the bytes, the PSS peak is the largest sample.
 */
export function watchProcess(pid: number): { stop(): ProcessStats } {
  const none = { peakRssMiB: 0, peakPssMiB: 0, writtenBytes: 0 };
  let last: ProcessStats = sample(pid, none) ?? none;
  const timer = setInterval(() => {
    last = sample(pid, last) ?? last;
  }, 200);
  return {
    stop() {
      clearInterval(timer);
      last = sample(pid, last) ?? last;
      return last;
    },
  };
}
