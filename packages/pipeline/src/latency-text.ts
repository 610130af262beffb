import type {
  Estimate,
  LatencyComparison,
  LatencyProtocol,
  LatencyResult,
  PhaseComparison,
  PhaseRounds,
  PhaseSpeed,
} from '@evop/runtime';

/** A model's speed as evop before interleaved rounds stored it in report.json: medians, no interval. */
export interface EarlierLatency {
  dense: { prefill: { median: number }; decode: { median: number } | null };
  pruned: { prefill: { median: number }; decode: { median: number } | null };
}

/** A report's latency: `compareLatency`'s, or an earlier evop's (reports and job results kept from before). */
export type ReportLatency = LatencyComparison | EarlierLatency;

export const isEarlierLatency = (latency: ReportLatency): latency is EarlierLatency => 'dense' in latency;

const rate = (tokensPerSecond: number) =>
  tokensPerSecond >= 100 ? String(Math.round(tokensPerSecond)) : tokensPerSecond.toPrecision(3);

const withInterval = (e: Estimate, text: (x: number) => string) =>
  `${text(e.median)} [${text(e.low)}, ${text(e.high)}]`;

/** A speed ratio: two decimals, three where two would round a bound that is not 1 to 1.00 (and blur the verdict). */
const ratio = (x: number) => (x !== 1 && x.toFixed(2) === '1.00' ? x.toFixed(3) : x.toFixed(2));

/**
 * The pruned model's speed against the dense one in a phase, as a verdict: a speedup or slowdown only when the
 * ratio's interval excludes 1, else `inconclusive` with the interval (never the median ratio as if it were one).
 */
export function speedupText(phase: PhaseComparison): string {
  const interval = `[${ratio(phase.ratio.low)}, ${ratio(phase.ratio.high)}]`;
  if (phase.verdict === 'inconclusive') return `inconclusive: ratio ${interval} spans 1`;
  return `×${ratio(phase.ratio.median)} ${interval}, ${phase.verdict}`;
}

/**
 * The speedup of prefill and decode in a few words each, for a table cell (the dashboard's): 'n/a' where the
 * stage failed or a model has no KV cache; an earlier evop's result, which has no interval, claims none.
 */
export function speedupCells(latency: ReportLatency | null): { prefill: string; decode: string } {
  if (!latency) return { prefill: 'n/a', decode: 'n/a' };
  if (isEarlierLatency(latency)) return { prefill: 'no interval', decode: 'no interval' };
  const cell = (phase: PhaseComparison | null) => (phase ? speedupText(phase) : 'n/a');
  return { prefill: cell(latency.prefill), decode: cell(latency.decode) };
}

/** How many rounds a phase took and, where the time cap stopped it first, that it did. */
const roundsText = (phase: PhaseRounds, protocol: LatencyProtocol) =>
  `${phase.rounds} rounds` +
  (phase.converged
    ? ''
    : `, stopped at the ${protocol.maxSeconds} s cap before the interval was within ±${100 * protocol.precision} %`);

const phaseNames = (protocol: LatencyProtocol) =>
  [`prefill (${protocol.seqLen} tokens)`, `decode (${protocol.decodeTokens} tokens)`] as const;

const heading = (protocol: LatencyProtocol, what: string) =>
  `latency, batch 1, tokens/s: median [${100 * protocol.confidence} % interval]${what}:`;

/**
 * The latency lines of a report: prefill and decode tokens/s of dense and pruned (median [95 % interval]) and
 * the verdict on the speed ratio. An earlier evop's numbers are shown without a ratio: they have no interval.
 */
export function latencyLines(latency: ReportLatency | null): string[] {
  if (!latency) return ['latency: not measured (the stage failed; evop prune --resume measures it)'];
  if (isEarlierLatency(latency)) {
    const speed = (m: EarlierLatency['dense']) =>
      `${rate(m.prefill.median)} / ${m.decode ? rate(m.decode.median) : 'n/a'}`;
    return [
      `tokens/s, prefill / decode (median, batch 1): dense ${speed(latency.dense)}, pruned ${speed(latency.pruned)}` +
        ' (measured by an earlier evop without an interval: no speedup claimed)',
    ];
  }
  const { protocol } = latency;
  const line = (name: string, phase: PhaseComparison | null) =>
    phase
      ? `  ${name}: dense ${withInterval(phase.dense, rate)}, pruned ${withInterval(phase.pruned, rate)}; ` +
        `${speedupText(phase)} (${roundsText(phase, protocol)})`
      : `  ${name}: n/a (no KV cache)`;
  const [prefill, decode] = phaseNames(protocol);
  return [
    heading(protocol, ', dense and pruned in alternating rounds'),
    line(prefill, latency.prefill),
    line(decode, latency.decode),
  ];
}

/** One model's prefill and decode tokens/s, median [95 % interval] (`evop latency MODEL`). */
export function modelLatencyLines(latency: LatencyResult): string[] {
  const { protocol } = latency;
  const line = (name: string, phase: PhaseSpeed | null) =>
    phase
      ? `  ${name}: ${withInterval(phase.tokensPerSecond, rate)} (${roundsText(phase, protocol)})`
      : `  ${name}: n/a (no KV cache)`;
  const [prefill, decode] = phaseNames(protocol);
  return [heading(protocol, ''), line(prefill, latency.prefill), line(decode, latency.decode)];
}
