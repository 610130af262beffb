import type { Result } from '@evop/db';

/** A point of a job's quality–speed front besides its own target: its units, mask and model. */
export interface ResultPoint {
  units: number;
  mask: string;
  modelManifestSha256: string;
}

/** The front's points a result holds, by units pruned (none for a job without a front). */
export const resultPoints = (result: Pick<Result, 'points'>): ResultPoint[] =>
  (result.points ?? []) as unknown as ResultPoint[];
