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
  /**
   * The group of each unit (`attn`, `mlp`, say): every mask then prunes the same number of units from each group,
   * as EvoPress removes as many attention blocks as MLP blocks. Absent: any units.
   */
  balance?: readonly string[];
}

/**
 * The masks a search may propose: one bit per unit (1 keep, 0 prune), `pruned` zeros, protected units kept, and
 * with `balance`, as many zeros in each group.
 */
export class SearchSpace {
  readonly size: number;
  readonly pruned: number;
  readonly protectedUnits: ReadonlySet<number>;
  /** Indices of the units that may be pruned. */
  readonly prunable: readonly number[];
  /** The prunable units by group (one group without `balance`), and how many of each group a mask prunes. */
  private readonly groups: { units: readonly number[]; quota: number }[];
  /** Each unit's index into `groups` (protected units too). */
  private readonly groupOf: readonly number[];

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
    const names = [...new Set(options.balance ?? [''])];
    if (options.balance && options.balance.length !== units.length)
      throw new SearchOptionError(
        'balance',
        `has ${options.balance.length} groups for ${units.length} units`,
      );
    this.groupOf = units.map((_, i) => (options.balance ? names.indexOf(options.balance[i]!) : 0));
    if (this.pruned % names.length !== 0)
      throw new SearchOptionError(
        'balance',
        `${this.pruned} units to prune cannot be split equally between ${names.join(' and ')}`,
      );
    this.groups = names.map((name, g) => {
      const members = this.prunable.filter((i) => this.groupOf[i] === g);
      const quota = this.pruned / names.length;
      if (members.length < quota)
        throw new SearchOptionError(
          'balance',
          `${quota} ${name} units to prune, but only ${members.length} may be`,
        );
      return { units: members, quota };
    });
  }

  get units(): readonly UnitInfo[] {
    return this.options.units;
  }

  /** How many masks meet the target: C(prunable, pruned), or the product of each group's. */
  get maskCount(): number {
    let count = 1;
    for (const { units, quota } of this.groups) {
      let c = 1;
      for (let i = 0; i < quota; i++) c = (c * (units.length - i)) / (i + 1);
      count *= Math.round(c);
    }
    return count;
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

  /**
   * Whether the mask has the right length and prunes exactly `count` units (default the target), no protected
   * one, and no more of a group than its share (a mask on its way to the target, as greedy removal builds, may
   * have fewer).
   */
  accepts(mask: string, count = this.pruned): boolean {
    if (mask.length !== this.size || /[^01]/.test(mask)) return false;
    const zeros = this.prunedUnits(mask);
    return (
      zeros.length === count &&
      zeros.every((i) => !this.protectedUnits.has(i)) &&
      this.groups.every((g, k) => zeros.filter((i) => this.groupOf[i] === k).length <= g.quota)
    );
  }

  /** Whether one more unit of unit `i`'s group may be pruned in `mask` (it is prunable and its group has room). */
  canPrune(mask: string, i: number): boolean {
    if (mask[i] !== '1' || this.protectedUnits.has(i)) return false;
    const group = this.groups[this.groupOf[i]!]!;
    return group.units.filter((u) => mask[u] === '0').length < group.quota;
  }

  /** The masks with one more unit pruned than `mask`, one per unit that `canPrune` allows: a greedy step. */
  removals(mask: string): string[] {
    return this.prunable
      .filter((i) => this.canPrune(mask, i))
      .map((i) => `${mask.slice(0, i)}0${mask.slice(i + 1)}`);
  }

  randomMask(rng: Rng): string {
    return this.maskOf(this.groups.flatMap((g) => rng.sample(g.units, g.quota)));
  }

  /** Swaps `swaps` pruned units each with a kept prunable one of its group: the counts stay exact. */
  mutate(mask: string, swaps: number, rng: Rng): string {
    const bits = mask.split('');
    for (let s = 0; s < swaps; s++) {
      const zeros = this.prunable.filter((i) => bits[i] === '0');
      if (zeros.length === 0) break;
      const zero = rng.pick(zeros);
      const ones = this.groups[this.groupOf[zero]!]!.units.filter((i) => bits[i] === '1');
      if (ones.length === 0) break;
      bits[zero] = '1';
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
    // Both parents meet each group's share, so flips where they differ can always restore it.
    for (const { units, quota } of this.groups) {
      const members = new Set(units);
      let zeros = units.filter((i) => bits[i] === '0').length;
      for (const i of rng.shuffle(differ.filter((d) => members.has(d)))) {
        if (zeros === quota) break;
        if (zeros > quota && bits[i] === '0') {
          bits[i] = '1';
          zeros--;
        } else if (zeros < quota && bits[i] === '1') {
          bits[i] = '0';
          zeros++;
        }
      }
    }
    return bits.join('');
  }

  /** Every mask one swap from `mask`: a pruned unit kept and a kept unit of its group pruned instead. */
  neighbours(mask: string): string[] {
    const out: string[] = [];
    for (const { units } of this.groups)
      for (const zero of units.filter((i) => mask[i] === '0'))
        for (const one of units.filter((i) => mask[i] === '1')) {
          const bits = mask.split('');
          bits[zero] = '1';
          bits[one] = '0';
          out.push(bits.join(''));
        }
    return out;
  }

  /**
   * A mask of another target (another pruned count) moved to this space's: protected units kept, then in each group
   * its kept units of lowest `rank` pruned, or its pruned units of highest `rank` kept, until the group's share is
   * met (ties by index). How a neighbouring target's best mask seeds this target's search.
   */
  fit(mask: string, rank: readonly number[]): string {
    if (mask.length !== this.size || /[^01]/.test(mask))
      throw new SearchOptionError('mask', `'${mask}' is not a mask of ${this.size} units`);
    const bits = mask.split('');
    for (const i of this.protectedUnits) bits[i] = '1';
    for (const { units, quota } of this.groups) {
      const zeros = units.filter((i) => bits[i] === '0');
      const ones = units.filter((i) => bits[i] === '1');
      if (zeros.length > quota)
        for (const i of zeros.sort((a, b) => rank[b]! - rank[a]! || a - b).slice(0, zeros.length - quota))
          bits[i] = '1';
      else
        for (const i of ones.sort((a, b) => rank[a]! - rank[b]! || a - b).slice(0, quota - zeros.length))
          bits[i] = '0';
    }
    return bits.join('');
  }

  /** The units of each group with the lowest `rank`, each group's share of them (ties by index). */
  lowest(rank: readonly number[]): string {
    return this.maskOf(
      this.groups.flatMap(({ units, quota }) =>
        [...units].sort((a, b) => rank[a]! - rank[b]! || a - b).slice(0, quota),
      ),
    );
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
