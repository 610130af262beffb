import { SearchOptionError } from './errors.ts';
import type { Rng } from './rng.ts';

/** A prunable unit as the search sees it: its id (`layer3`, `attn3`, `mlp3`) and parameter count. */
export interface UnitInfo {
  id: string;
  params: number;
}

/**
 * How much to prune: a number of units, a fraction of the units, or a fraction of the units' parameters.
 * Fractions resolve to a unit count (parameters by the mean unit size), so every candidate prunes exactly
 * that many units.
 */
export type Target = { units: number } | { fraction: number } | { paramFraction: number };

export interface SearchSpaceOptions {
  units: readonly UnitInfo[];
  target: Target;
  /** Units never pruned, by index or id. */
  protected?: readonly (number | string)[];
}

/** The masks a search may propose: one bit per unit (1 keep, 0 prune), `pruned` zeros, protected units kept. */
export class SearchSpace {
  readonly size: number;
  readonly pruned: number;
  readonly protectedUnits: ReadonlySet<number>;
  /** Indices of the units that may be pruned. */
  readonly prunable: readonly number[];

  constructor(readonly options: SearchSpaceOptions) {
    const { units } = options;
    if (units.length === 0) throw new SearchOptionError('units', 'the model has no prunable units');
    this.size = units.length;
    this.protectedUnits = new Set(
      (options.protected ?? []).map((p) => {
        const i = typeof p === 'number' ? p : units.findIndex((u) => u.id === p);
        if (!Number.isInteger(i) || i < 0 || i >= units.length)
          throw new SearchOptionError(
            'protected',
            `no unit ${JSON.stringify(p)} among ${units.length} units`,
          );
        return i;
      }),
    );
    this.prunable = units.map((_, i) => i).filter((i) => !this.protectedUnits.has(i));
    this.pruned = resolveTarget(options.target, units);
    if (this.pruned > this.prunable.length)
      throw new SearchOptionError(
        'target',
        `${this.pruned} units to prune, but only ${this.prunable.length} of ${units.length} may be pruned`,
      );
  }

  get units(): readonly UnitInfo[] {
    return this.options.units;
  }

  /** How many masks meet the target: C(prunable, pruned). */
  get maskCount(): number {
    let c = 1;
    for (let i = 0; i < this.pruned; i++) c = (c * (this.prunable.length - i)) / (i + 1);
    return Math.round(c);
  }

  maskOf(prunedUnits: Iterable<number>): string {
    const bits = Array.from({ length: this.size }, () => '1');
    for (const i of prunedUnits) bits[i] = '0';
    return bits.join('');
  }

  prunedUnits(mask: string): number[] {
    const out: number[] = [];
    for (let i = 0; i < mask.length; i++) if (mask[i] === '0') out.push(i);
    return out;
  }

  /** Whether the mask has the right length, prunes exactly `count` units (default the target) and no protected one. */
  accepts(mask: string, count = this.pruned): boolean {
    if (mask.length !== this.size || /[^01]/.test(mask)) return false;
    const zeros = this.prunedUnits(mask);
    return zeros.length === count && zeros.every((i) => !this.protectedUnits.has(i));
  }

  randomMask(rng: Rng): string {
    return this.maskOf(rng.sample(this.prunable, this.pruned));
  }

  /** Swaps `swaps` pruned units with kept prunable ones: the count stays exact. */
  mutate(mask: string, swaps: number, rng: Rng): string {
    const bits = mask.split('');
    for (let s = 0; s < swaps; s++) {
      const zeros = this.prunable.filter((i) => bits[i] === '0');
      const ones = this.prunable.filter((i) => bits[i] === '1');
      if (zeros.length === 0 || ones.length === 0) break;
      bits[rng.pick(zeros)] = '1';
      bits[rng.pick(ones)] = '0';
    }
    return bits.join('');
  }

  /**
   * Uniform crossover (each prunable unit's bit from either parent), repaired to the exact count by flipping
   * randomly chosen units among those where the parents differ.
   */
  crossover(a: string, b: string, rng: Rng): string {
    const bits = a.split('');
    const differ = this.prunable.filter((i) => a[i] !== b[i]);
    for (const i of differ) if (rng.float() < 0.5) bits[i] = b[i]!;
    let zeros = this.prunable.filter((i) => bits[i] === '0').length;
    for (const i of rng.shuffle(differ)) {
      if (zeros === this.pruned) break;
      if (zeros > this.pruned && bits[i] === '0') {
        bits[i] = '1';
        zeros--;
      } else if (zeros < this.pruned && bits[i] === '1') {
        bits[i] = '0';
        zeros++;
      }
    }
    return bits.join('');
  }
}

function resolveTarget(target: Target, units: readonly UnitInfo[]): number {
  const count = (n: number, option: string) => {
    if (!Number.isInteger(n) || n < 1)
      throw new SearchOptionError(option, `must give at least one unit to prune, got ${n}`);
    if (n >= units.length)
      throw new SearchOptionError(option, `${n} units to prune, but the model has only ${units.length}`);
    return n;
  };
  const fraction = (f: number, option: string) => {
    if (!(f > 0 && f < 1)) throw new SearchOptionError(option, `must be a fraction in (0, 1), got ${f}`);
    return f;
  };
  if ('units' in target) return count(target.units, 'target.units');
  if ('fraction' in target)
    return count(Math.round(fraction(target.fraction, 'target.fraction') * units.length), 'target.fraction');
  const mean = units.reduce((s, u) => s + u.params, 0) / units.length;
  const total = units.reduce((s, u) => s + u.params, 0);
  return count(
    Math.round((fraction(target.paramFraction, 'target.paramFraction') * total) / mean),
    'target.paramFraction',
  );
}
