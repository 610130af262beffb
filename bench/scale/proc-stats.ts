import { readFileSync } from 'node:fs';

export interface ProcessStats {
  /** Peak resident set (VmHWM), MiB. */
  peakRssMiB: number;
  /** Bytes the process caused to be written to storage (/proc/<pid>/io write_bytes). */
  writtenBytes: number;
}

function sample(pid: number): ProcessStats | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    return {
      peakRssMiB: Number(status.match(/VmHWM:\s+(\d+)/)![1]) / 1024,
      writtenBytes: Number(io.match(/write_bytes:\s+(\d+)/)![1]),
    };
  } catch {
    return undefined; // the process has exited: its last sample stands
  }
}

/**
 * Follows a process's peak RSS and bytes written (Linux /proc), sampling every 200 ms until `stop()`; both only
 * grow, so the last sample before the process ends is what it used (less what it did in its last 200 ms).
 */
export function watchProcess(pid: number): { stop(): ProcessStats } {
  let last: ProcessStats = sample(pid) ?? { peakRssMiB: 0, writtenBytes: 0 };
  const timer = setInterval(() => {
    last = sample(pid) ?? last;
  }, 200);
  return {
    stop() {
      clearInterval(timer);
      last = sample(pid) ?? last;
      return last;
    },
  };
}
