import { SearchOptionError } from './errors.ts';
import type { SearchSpace } from './search-space.ts';
import type { EvolutionOptions } from './strategies/base.ts';
import { EVOP_DEFAULTS, type EvopOptions, EvopStrategy } from './strategies/evop.ts';
import { EVOPRESS_DEFAULTS, type EvopressOptions, EvopressStrategy } from './strategies/evopress.ts';
import { GreedyStrategy } from './strategies/greedy.ts';
import { ShortGptStrategy } from './strategies/one-shot.ts';
import { ExhaustiveStrategy, RandomStrategy } from './strategies/sampling.ts';
import type { Strategy } from './strategy.ts';

export const STRATEGIES = [
  'evop',
  'evopress',
  'sleb',
  'blockpruner',
  'shortgpt',
  'random',
  'exhaustive',
] as const;
export type StrategyName = (typeof STRATEGIES)[number];

export interface StrategyOptions {
  seed?: number;
  /** Evaluation budget in full-fidelity equivalents (evop, evopress, random; default 1000). */
  budget?: number;
  /** Per-unit block influence, 1 − cosine (needed by shortgpt; seeds evop / evopress when `seedShortGpt`). */
  influence?: readonly number[];
  seedShortGpt?: boolean;
  /** Masks evop / evopress start from (after ShortGPT's with `seedShortGpt`); each must be one of the space's. */
  seedMasks?: readonly string[];
  /**
   * The validation windows' fidelity, when the evaluator has windows after the calibration windows (default 1:
   * none): evop's final choice measures its best masks on them (`EvopOptions.select`).
   */
  validation?: number;
  /** exhaustive refuses spaces with more masks than this (default 5000). */
  maxMasks?: number;
  evop?: Partial<Omit<EvopOptions, 'seed' | 'budget' | 'seedMasks' | 'validation'>>;
  evopress?: Partial<Omit<EvopressOptions, 'seed' | 'budget' | 'seedMasks'>>;
}

function check(ok: boolean, option: string, reason: string): void {
  if (!ok) throw new SearchOptionError(option, reason);
}

const isInt = (v: number, min: number) => Number.isInteger(v) && v >= min;
const inUnit = (v: number) => v > 0 && v <= 1;

function checkEvolution(o: EvolutionOptions, prefix: string): void {
  check(inUnit(o.lowFidelity), `${prefix}.lowFidelity`, `must be in (0, 1], got ${o.lowFidelity}`);
  check(isInt(o.patience, 1), `${prefix}.patience`, `must be a positive integer, got ${o.patience}`);
}

/** A strategy by name, its options checked: a bad one throws a SearchOptionError naming it. */
export function createStrategy(name: string, space: SearchSpace, options: StrategyOptions = {}): Strategy {
  check(
    (STRATEGIES as readonly string[]).includes(name),
    'strategy',
    `unknown strategy '${name}'; use one of ${STRATEGIES.join(', ')}`,
  );
  const seed = options.seed ?? 0;
  const budget = options.budget ?? EVOP_DEFAULTS.budget;
  check(isInt(seed, 0), 'seed', `must be a non-negative integer, got ${seed}`);
  check(isInt(budget, 1), 'budget', `must be a positive integer number of evaluations, got ${budget}`);
  const influence = options.influence;
  if (influence)
    check(
      influence.length === space.size,
      'influence',
      `has ${influence.length} values for ${space.size} units`,
    );
  if (options.seedShortGpt)
    check(influence !== undefined, 'seedShortGpt', 'needs the units’ block influence');
  for (const mask of options.seedMasks ?? [])
    check(space.accepts(mask), 'seedMasks', `'${mask}' is not a mask of this search space`);
  const seeds = [...(options.seedShortGpt ? [space.lowest(influence!)] : []), ...(options.seedMasks ?? [])];
  const seedMasks = seeds.length > 0 ? { seedMasks: seeds } : {};

  switch (name as StrategyName) {
    case 'evop': {
      const population = options.evop?.population ?? EVOP_DEFAULTS.population;
      const o: EvopOptions = {
        ...EVOP_DEFAULTS,
        tournament: Math.min(EVOP_DEFAULTS.tournament, population),
        ...options.evop,
        seed,
        budget,
        ...seedMasks,
        validation: options.validation ?? EVOP_DEFAULTS.validation,
      };
      check(o.validation >= 1, 'validation', `must be at least 1, got ${o.validation}`);
      check(isInt(o.select, 0), 'evop.select', `must be a non-negative integer, got ${o.select}`);
      check(isInt(o.population, 2), 'evop.population', `must be an integer ≥ 2, got ${o.population}`);
      check(
        isInt(o.tournament, 1) && o.tournament <= o.population,
        'evop.tournament',
        `must be in 1…population, got ${o.tournament}`,
      );
      check(
        isInt(o.elitism, 0) && o.elitism < o.population,
        'evop.elitism',
        `must be in 0…population − 1, got ${o.elitism}`,
      );
      check(
        o.crossover >= 0 && o.crossover <= 1,
        'evop.crossover',
        `must be a probability, got ${o.crossover}`,
      );
      check(inUnit(o.rescore), 'evop.rescore', `must be in (0, 1], got ${o.rescore}`);
      check(isInt(o.polishMoves, 1), 'evop.polishMoves', `must be a positive integer, got ${o.polishMoves}`);
      checkEvolution(o, 'evop');
      check(budget >= o.population, 'budget', `${budget} is less than one population of ${o.population}`);
      return new EvopStrategy(space, o);
    }
    case 'evopress': {
      const o: EvopressOptions = {
        ...EVOPRESS_DEFAULTS,
        ...options.evopress,
        seed,
        budget,
        ...seedMasks,
      };
      check(isInt(o.lambda, 1), 'evopress.lambda', `must be a positive integer, got ${o.lambda}`);
      check(
        isInt(o.survivors, 1) && o.survivors <= o.lambda,
        'evopress.survivors',
        `must be in 1…lambda, got ${o.survivors}`,
      );
      checkEvolution(o, 'evopress');
      return new EvopressStrategy(space, o);
    }
    case 'sleb':
    case 'blockpruner': {
      const wholeLayers = space.units.every((u) => u.id.startsWith('layer'));
      if (name === 'sleb')
        check(
          wholeLayers,
          'strategy',
          'sleb removes whole layers: use layer granularity, or blockpruner for sub-blocks',
        );
      else
        check(
          !wholeLayers,
          'strategy',
          'blockpruner removes attention / MLP sub-blocks: use sublayer granularity, or sleb for layers',
        );
      return new GreedyStrategy(name as 'sleb' | 'blockpruner', space);
    }
    case 'shortgpt':
      check(influence !== undefined, 'influence', 'shortgpt needs the units’ block influence (1 − cosine)');
      return new ShortGptStrategy(space, influence!);
    case 'random':
      return new RandomStrategy(space, budget, seed);
    case 'exhaustive': {
      const maxMasks = options.maxMasks ?? 5000;
      check(isInt(maxMasks, 1), 'maxMasks', `must be a positive integer, got ${maxMasks}`);
      check(
        space.maskCount <= maxMasks,
        'strategy',
        `exhaustive would evaluate ${space.maskCount} masks, more than maxMasks = ${maxMasks}`,
      );
      return new ExhaustiveStrategy(space);
    }
  }
}
