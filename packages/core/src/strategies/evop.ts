import type { Best, Candidate, Scored } from '../evaluation.ts';
import type { SearchSpace } from '../search-space.ts';
import { BaseStrategy, byFitness, EVOLUTION_DEFAULTS, type EvolutionOptions, swapCount } from './base.ts';

/** EvoP's pruning-pattern search (EPPS). EvoP's own hyperparameters are not public: these are evop's defaults. */
export interface EvopOptions extends EvolutionOptions {
  /** Distinct masks per generation (default 32). */
  population: number;
  /**
   * Tournament size for parent selection (default 8, at most the population). A quarter of the default population:
   * measured against 3 with bench:efficiency, it found the best mask sooner on layers and more often on sub-blocks.
   */
  tournament: number;
  /** Best members always kept into the next generation (default 2). */
  elitism: number;
  /** Probability that a child is a uniform crossover of two parents rather than a copy of one (default 0.8). */
  crossover: number;
  /** Fraction of the screened offspring, the best, re-scored on all windows (default 0.25). */
  rescore: number;
  /**
   * When the population stops improving, search the best mask's one-swap neighbours, moving to the first better
   * one, until none is better or the budget is spent (default true). The neighbours are screened first (on
   * `lowFidelity` of the windows), then measured on all windows in the order of their screened fitness, 8 at a
   * time: the likely better one comes first, and a local optimum is still certified on every window. The
   * generations leave the budget `polishMoves` screenings of a neighbourhood, each with one batch; where the budget
   * ends before a neighbourhood's screening, the share that fits is screened, likeliest first. The screened
   * generations can hide a better neighbour (a subset of windows ranks it lower); this looks at each one.
   */
  polish: boolean;
  /**
   * Moves of the polish the generations leave budget for (default 3): where the budget ends the generations
   * before they stall, the polish still takes the best mask that far. Measured on 12 and 16 of 32 sub-blocks at
   * budget 400, seeds 0–4 (bench:quality, BENCHMARKS.md): the best calibration mask at 8 of 10 with one move, 9
   * with two, 10 with three.
   */
  polishMoves: number;
  /**
   * Before the first population, remove units one at a time on the screening windows, each time the one whose
   * removal hurts least (SLEB's / BlockPruner's walk at `lowFidelity` of the cost), and start the search from
   * where the walk ends (default true). Skipped when the walk could cost more than a third of the budget. The walk's
   * last step screens masks of the target count: its best (`rescore` of the population) are measured on all
   * windows first, as a generation's best offspring are (not mutated, unlike `seedMasks`). On large spaces a random
   * first population starts far from the good masks, and a budget of a few hundred evaluations can end before the
   * generations reach them; the walk starts the search near them. Its ranking is only as good as the screening
   * windows: with 2 of them (8 calibration windows) it led the search astray when half the first population were
   * its ends' mutations (BENCHMARKS.md).
   */
  greedy: boolean;
  /**
   * From the best start mask (the walk's ends, `seedMasks`), a local search within the first third of the budget
   * before the rest of the first population (default true): its one-swap neighbours screened, the best screened
   * measured on all windows (one polish batch), a move to the best of them when it is better; a batch without a
   * move, or no room for the next, ends it. The walk often ends one swap from the best mask, and a generation's
   * children, mostly crossovers, rarely make that one swap: on 4 of 16 layers evop held the best mask after 107
   * full-evaluation equivalents without the climb, 39.5 with it (EvoPress 55; bench:efficiency, BENCHMARKS.md).
   * No climb where a step (a neighbourhood's screening and a batch) costs more than two generations: there the
   * generations gain more for the same budget, and a first population of one mask's neighbours converges on it
   * (8 of 32 sub-blocks: a step costs 56, a generation 16; the climb's 146 full-evaluation equivalents took the
   * walk's end from 1.850 to 1.822 where the generations reached 1.80, and 3 seeds of 5 ended on the same mask).
   */
  climb: boolean;
  /**
   * The final choice: the `select` best masks measured on the validation windows as well (default 4; 0 turns it
   * off), and the best there is the search's answer. Masks within noise of each other on the calibration windows
   * can differ on other text: the search chose the best of thousands on the same windows, so its best is the one
   * whose calibration score flatters it most; windows it never saw break the tie on more text. Only with
   * `validation` > 1; its cost is kept out of the budget from the start.
   */
  select: number;
  /**
   * The fidelity of the validation windows: the calibration windows and the windows after them, as a multiple of
   * the calibration windows (`evop prune`: the CCDS pool's windows neither calibration nor held out, 3 times
   * the calibration). Default 1: there are none.
   */
  validation: number;
}

export const EVOP_DEFAULTS = {
  population: 32,
  tournament: 8,
  elitism: 2,
  crossover: 0.8,
  rescore: 0.25,
  polish: true,
  polishMoves: 3,
  greedy: true,
  climb: true,
  select: 4,
  validation: 1,
  ...EVOLUTION_DEFAULTS,
} satisfies EvopOptions;

type Phase = 'greedy' | 'start' | 'climb' | 'init' | 'screen' | 'rescore' | 'polish' | 'select' | 'done';

/** Neighbours measured per polish step: few, so that a move is taken soon after a better one is found. */
const POLISH_BATCH = 8;

/**
 * A genetic algorithm over masks with an exact pruned count, its first population seeded by a screened greedy
 * walk (`greedy`) and a local search from where it ends (`climb`). Each generation: tournament-selected parents,
 * uniform crossover repaired to the count, swap mutation; offspring never seen before are screened on a fraction
 * of the windows, the best of them re-scored on all; survivors are the elites, the re-scored offspring and the
 * best of the rest of the population. When the population stalls, a local search (`polish`) takes over; the
 * validation windows make the final choice (`select`).
 */
export class EvopStrategy extends BaseStrategy {
  readonly name = 'evop';
  private phase: Phase;
  /** The greedy walk's last step, best screened first: where it has reached; empty before its first step. */
  private walked: string[] = [];
  private members: Scored[] = [];
  private screened: Scored[] = [];
  /** Every mask's fitness on the screening windows, by mask: the polish measures neighbours in this order. */
  private screenedFitness = new Map<string, number>();
  /** The mask whose neighbourhood was screened last: its screenings guess at the next centre's neighbours. */
  private centre: string | undefined;
  private stall = 0;
  generation = 0;

  constructor(
    space: SearchSpace,
    readonly options: EvopOptions,
  ) {
    super(space, options.seed);
    this.phase = options.greedy && this.walkCost() <= options.budget / 3 ? 'greedy' : 'start';
  }

  /** The most the greedy walk can cost: every prunable unit not yet pruned, screened at each of its steps. */
  private walkCost(): number {
    const { prunable, pruned } = this.space;
    let candidates = 0;
    for (let step = 0; step < pruned; step++) candidates += prunable.length - step;
    return candidates * this.options.lowFidelity;
  }

  override population(): Best[] {
    return this.members.map(({ mask, fitness }) => ({ mask, fitness }));
  }

  ask(): Candidate[] {
    const { population, lowFidelity, rescore, budget } = this.options;
    if (this.phase === 'done') return [];
    if (this.phase === 'greedy')
      return this.propose(this.space.removals(this.walked[0] ?? '1'.repeat(this.space.size)), lowFidelity);
    if (this.phase === 'start') return this.startStep();
    if (this.phase === 'climb') return this.climbStep();
    if (this.phase === 'init') return this.initStep();
    if (this.phase === 'polish') return this.polishStep();
    if (this.phase === 'select') return this.selectStep();
    if (this.phase === 'rescore') {
      const top = [...this.screened].sort(byFitness).slice(0, Math.ceil(population * rescore));
      return this.propose(
        top.map((s) => s.mask),
        1,
      );
    }
    const reserve = this.polishReserve() + this.selectReserve();
    const offspring = this.spent + this.generationCost() + reserve <= budget ? this.offspring() : [];
    if (offspring.length === 0) return this.stalled();
    return this.propose(offspring, lowFidelity < 1 ? lowFidelity : 1);
  }

  /** A generation: its offspring screened, the best of them re-scored on all windows. */
  private generationCost(): number {
    const { population, lowFidelity, rescore } = this.options;
    return population * lowFidelity + (lowFidelity < 1 ? Math.ceil(population * rescore) : 0);
  }

  /**
   * The masks the search starts from, measured on all windows before the rest of the first population: the seed
   * masks and the walk's best, where the search is likeliest to hold its best mask soonest.
   */
  private startStep(): Candidate[] {
    const masks = this.startMasks();
    if (masks.length === 0) {
      this.phase = 'init';
      return this.ask();
    }
    return this.propose(masks, 1);
  }

  /**
   * The climb's next step (`climb`), while the screening of a neighbourhood and one batch fit and cost no more than
   * two generations; else the rest of the first population.
   */
  private climbStep(): Candidate[] {
    const step =
      this.options.climb && this.members.length > 0 && this.stepCost() <= 2 * this.generationCost()
        ? this.neighbourhoodStep(this.options.budget / 3, false)
        : [];
    if (step.length > 0) return step;
    this.phase = 'init';
    return this.ask();
  }

  /** The rest of the first population; none left (a space nearly exhausted by the start) begins the generations. */
  private initStep(): Candidate[] {
    const masks = this.initialMasks().filter((m) => !this.wasProposed(m, 1));
    if (masks.length === 0) {
      this.beginGenerations();
      return this.ask();
    }
    return this.propose(masks, 1);
  }

  private beginGenerations(): void {
    this.phase = 'screen';
    this.generation = 1;
  }

  /** The generations are over: polish the best mask with what the budget has left, or choose. */
  private stalled(): Candidate[] {
    this.phase = this.options.polish ? 'polish' : 'select';
    return this.ask();
  }

  /** What the final choice needs: `select` masks on the validation windows. */
  private selectReserve(): number {
    const { select, validation } = this.options;
    return validation > 1 ? select * validation : 0;
  }

  /**
   * The best members, as many as `select` and the budget allow, measured on the validation windows; fewer than
   * two leave nothing to choose: done.
   */
  private selectStep(): Candidate[] {
    const { select, validation, budget } = this.options;
    const room = validation > 1 ? Math.floor((budget - this.spent) / validation) : 0;
    const masks = this.members.slice(0, Math.min(select, room)).map((m) => m.mask);
    if (masks.length < 2) {
      this.phase = 'done';
      return [];
    }
    return this.propose(masks, validation);
  }

  /** What `polishMoves` moves of the polish need. */
  private polishReserve(): number {
    const { polish, polishMoves } = this.options;
    return polish ? polishMoves * this.stepCost() : 0;
  }

  /** A step of a local search from the best member: a screening of its neighbourhood and a batch on all windows. */
  private stepCost(): number {
    const { lowFidelity } = this.options;
    const screening = lowFidelity < 1 ? this.space.neighbours(this.members[0]!.mask).length * lowFidelity : 0;
    return screening + POLISH_BATCH;
  }

  /**
   * A step of a local search from the best member, spending up to `limit`: its one-swap neighbours never measured
   * on all windows and not yet screened, when that and one batch more fit; else the next few of them, best
   * screened first (the rest in random order). Only with `certify` does a step go on where the screening or a
   * whole batch no longer fits: first the likeliest of the unscreened neighbours (`sameSwapAtCentre`), as many as
   * fit beside one batch (when that is more than a batch), then unscreened neighbours and a short batch: a local
   * optimum is certified on every neighbour. Empty when none is left or nothing fits.
   */
  private neighbourhoodStep(limit: number, certify: boolean): Candidate[] {
    const { lowFidelity } = this.options;
    const room = limit - this.spent;
    const best = this.members[0]!.mask;
    const fresh = this.space.neighbours(best).filter((m) => !this.wasProposed(m, 1));
    const unscreened = lowFidelity < 1 ? fresh.filter((m) => !this.wasProposed(m, lowFidelity)) : [];
    if (unscreened.length > 0 && unscreened.length * lowFidelity + POLISH_BATCH <= room) {
      this.centre = best;
      return this.propose(unscreened, lowFidelity);
    }
    if (!certify && (unscreened.length > 0 || POLISH_BATCH > room)) return [];
    // Where the budget ends before the neighbourhood's screening (12 of 32 sub-blocks at budget 400: the last move's
    // neighbourhood, ~200 masks unscreened, left 30 full-evaluation equivalents): the part that fits, likeliest
    // first, so that the next batch is the best of a screening, not neighbours in random order.
    const share = Math.floor((room - POLISH_BATCH) / lowFidelity);
    if (unscreened.length > 0 && share > POLISH_BATCH) {
      const guess = new Map(unscreened.map((m) => [m, this.sameSwapAtCentre(best, m)]));
      const likeliest = this.rng.shuffle(unscreened).sort((a, b) => guess.get(a)! - guess.get(b)!);
      this.centre = best;
      return this.propose(likeliest.slice(0, share), lowFidelity);
    }
    const rank = (m: string) => this.screenedFitness.get(m) ?? Number.POSITIVE_INFINITY;
    const batch = this.rng
      .shuffle(fresh)
      .sort((a, b) => rank(a) - rank(b))
      .slice(0, Math.min(POLISH_BATCH, Math.floor(room)));
    return batch.length > 0 ? this.propose(batch, 1) : [];
  }

  /**
   * A guess at a neighbour's screened fitness: that of the same swap made at the last screened centre, where it
   * was screened (swaps' effects roughly add up); otherwise none (+∞).
   */
  private sameSwapAtCentre(best: string, neighbour: string): number {
    const centre = this.centre;
    if (centre === undefined) return Number.POSITIVE_INFINITY;
    const bits = [...centre];
    for (let u = 0; u < neighbour.length; u++)
      if (neighbour[u] !== best[u]) {
        if (centre[u] !== best[u]) return Number.POSITIVE_INFINITY;
        bits[u] = neighbour[u]!;
      }
    return this.screenedFitness.get(bits.join('')) ?? Number.POSITIVE_INFINITY;
  }

  /** The polish's next step with the budget the final choice leaves; none left means a local optimum: choose. */
  private polishStep(): Candidate[] {
    const step = this.neighbourhoodStep(this.options.budget - this.selectReserve(), true);
    if (step.length > 0) return step;
    this.phase = 'select';
    return this.selectStep();
  }

  protected receive(results: readonly Scored[]): void {
    for (const r of results) if (r.fidelity < 1) this.screenedFitness.set(r.mask, r.fitness);
    if (this.phase === 'greedy') {
      this.walked = [...results].sort(byFitness).map((r) => r.mask);
      if (this.space.accepts(this.walked[0]!)) this.phase = 'start';
    } else if (this.phase === 'start') {
      this.members = [...results].sort(byFitness);
      this.phase = 'climb';
    } else if (this.phase === 'init') {
      this.members = [...this.members, ...results].sort(byFitness);
      this.beginGenerations();
    } else if (this.phase === 'screen' && this.options.lowFidelity < 1) {
      this.screened = [...results];
      this.phase = 'rescore';
    } else if (this.phase === 'select') {
      // The answer keeps its calibration fitness, the number every strategy reports.
      const chosen = [...results].sort(byFitness)[0]!.mask;
      const { mask, fitness } = this.members.find((m) => m.mask === chosen)!;
      this.settle({ mask, fitness });
      this.phase = 'done';
    } else if (this.phase === 'polish' || this.phase === 'climb') {
      // A screening of the neighbourhood only fills screenedFitness. Measured on all windows: the best member moves
      // to a better neighbour as soon as one is found; the population keeps its size. A climb ends without a move.
      if (results[0]!.fidelity === 1) {
        const before = this.members[0]!.mask;
        this.members = [...results, ...this.members].sort(byFitness).slice(0, this.options.population);
        if (this.phase === 'climb' && this.members[0]!.mask === before) this.phase = 'init';
      }
    } else {
      this.survive(results);
    }
  }

  private survive(rescored: readonly Scored[]): void {
    const { population, elitism, patience } = this.options;
    const before = this.members[0]!.fitness;
    const elites = this.members.slice(0, elitism);
    const rest = this.members.slice(elitism).sort(byFitness);
    const next = [...elites, ...rescored, ...rest].slice(0, population);
    this.members = next.sort(byFitness);
    this.stall = this.members[0]!.fitness < before ? 0 : this.stall + 1;
    this.screened = [];
    this.generation++;
    if (this.stall >= patience) this.phase = this.options.polish ? 'polish' : 'select';
    else this.phase = 'screen';
  }

  /** The seed masks and the walk's ends (its best `rescore` of the population), at most a population. */
  private startMasks(): string[] {
    const { population, rescore } = this.options;
    const walkEnds = this.walked.slice(0, Math.ceil(population * rescore));
    return [...new Set([...(this.options.seedMasks ?? []), ...walkEnds])].slice(0, population);
  }

  /**
   * The start masks, then mutations of the seed masks up to half the population, then random masks. The walk's
   * ends are not mutated: on few screening windows its ranking can be wrong, and half a population around its ends
   * led the search astray (bench:efficiency on 8 windows, BENCHMARKS.md); its ends alone keep its gains on 32
   * windows.
   */
  private initialMasks(): string[] {
    const { population } = this.options;
    const seedMasks = this.options.seedMasks ?? [];
    const masks = new Set<string>([...this.members.map((m) => m.mask), ...this.startMasks()]);
    for (
      let tries = 0;
      seedMasks.length > 0 && masks.size < population / 2 && tries < population * 20;
      tries++
    )
      masks.add(this.space.mutate(this.rng.pick(seedMasks), swapCount(this.rng), this.rng));
    for (
      let tries = 0;
      masks.size < Math.min(population, this.space.maskCount) && tries < population * 50;
      tries++
    )
      masks.add(this.space.randomMask(this.rng));
    return [...masks];
  }

  private tournament(): string {
    let best: Scored | undefined;
    for (let i = 0; i < this.options.tournament; i++) {
      const m = this.rng.pick(this.members);
      if (!best || m.fitness < best.fitness) best = m;
    }
    return best!.mask;
  }

  /** Up to `population` children never proposed before (fewer when the space is nearly exhausted). */
  private offspring(): string[] {
    const { population, crossover, lowFidelity } = this.options;
    const fidelity = lowFidelity < 1 ? lowFidelity : 1;
    const children = new Set<string>();
    for (let tries = 0; children.size < population && tries < population * 50; tries++) {
      const first = this.tournament();
      const parent =
        this.rng.float() < crossover ? this.space.crossover(first, this.tournament(), this.rng) : first;
      const child = this.space.mutate(parent, swapCount(this.rng), this.rng);
      if (!this.wasProposed(child, fidelity) && !this.wasProposed(child, 1)) children.add(child);
    }
    return [...children];
  }

  protected fields(): Record<string, unknown> {
    return {
      phase: this.phase,
      walked: this.walked,
      members: this.members,
      screened: this.screened,
      screenedFitness: [...this.screenedFitness],
      centre: this.centre,
      stall: this.stall,
      generation: this.generation,
    };
  }

  protected restoreFields(f: Record<string, unknown>): void {
    this.phase = f.phase as Phase;
    // A checkpoint of an evop without the walk has none.
    this.walked = (f.walked as string[] | undefined) ?? [];
    this.members = f.members as Scored[];
    this.screened = f.screened as Scored[];
    this.screenedFitness = new Map(f.screenedFitness as [string, number][]);
    this.centre = f.centre as string | undefined;
    this.stall = f.stall as number;
    this.generation = f.generation as number;
  }
}
