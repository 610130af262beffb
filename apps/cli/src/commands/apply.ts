import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runtimeConfig } from '@evop/config';
import {
  checkMaskFits,
  discoverLayers,
  fingerprintOf,
  type Granularity,
  type MaskFile,
  maskFileOf,
  pruneModel,
  readModel,
  unitsOf,
  writeModel,
} from '@evop/onnx';
import { checkLayout, InferencePool } from '@evop/runtime';
import { Command, Option } from 'commander';
import { writeJson } from '../atomic-json.ts';
import { CliError } from '../cli-error.ts';
import { type RawOptions, run } from '../command.ts';

/** The mask as given: a mask.json (from `evop prune` or `evop apply`), or bits whose count says the granularity. */
function readMask(
  raw: string,
  granularity: string | undefined,
  units: (g: Granularity) => string[],
): MaskFile {
  if (existsSync(raw)) {
    let file: Partial<MaskFile>;
    try {
      file = JSON.parse(readFileSync(raw, 'utf8')) as Partial<MaskFile>;
    } catch (err) {
      throw new CliError(`--mask: '${raw}' is not JSON (${(err as Error).message})`);
    }
    if (typeof file.mask !== 'string' || !['layer', 'sublayer'].includes(file.granularity as string))
      throw new CliError(`--mask: '${raw}' is not a mask.json (it needs "mask" and "granularity")`);
    return { units: units(file.granularity!), pruned: [], ...file } as MaskFile;
  }
  if (!/^[01]+$/.test(raw))
    throw new CliError(`--mask: '${raw}' is neither a file nor bits (1 keeps a unit, 0 removes it)`);
  const layers = units('layer');
  const sublayers = units('sublayer');
  const chosen =
    (granularity as Granularity | undefined) ??
    (raw.length === layers.length ? 'layer' : raw.length === sublayers.length ? 'sublayer' : undefined);
  if (!chosen || !['layer', 'sublayer'].includes(chosen))
    throw new CliError(
      `--mask: ${raw.length} bits, but the model has ${layers.length} layers and ${sublayers.length} sub-blocks`,
    );
  return { mask: raw, granularity: chosen, units: units(chosen), pruned: [] };
}

/**
 * `evop apply <model> --mask BITS|mask.json --out DIR`: removes the units a mask names from a model, typically a
 * mask searched on one export (fp32, no cache) applied to another export of the same model (fp16, KV cache).
 * Refuses when the units or the recorded source model do not match.
 */
async function apply(positionals: string[], options: RawOptions): Promise<number> {
  const path = positionals[0];
  if (!path) throw new CliError('apply: give the ONNX model to prune');
  if (!existsSync(path)) throw new CliError(`apply: no such file '${path}'`);
  const raw = options.mask as string | undefined;
  if (!raw) throw new CliError('--mask: give the mask, as bits (110111…) or a mask.json from evop prune');
  const out = resolve((options.out as string | undefined) ?? 'evop-applied');
  const model = readModel(path);
  const layout = discoverLayers(model.proto);
  const file = readMask(raw, options.granularity as string | undefined, (g) =>
    unitsOf(layout, g).map((u) => u.id),
  );
  checkMaskFits(file, layout, fingerprintOf(model.proto, layout));

  const pool = new InferencePool({ config: runtimeConfig() });
  try {
    await checkLayout(pool, model, layout, mkdtempSync(join(tmpdir(), 'evop-apply-')));
  } finally {
    await pool.close();
  }
  const pruned = pruneModel(model.proto, layout, file.mask, {
    granularity: file.granularity,
    sourceSha256: model.sha256,
  });
  const written = writeModel(pruned, join(out, 'model.onnx'));
  const applied = maskFileOf(model, layout, file.granularity, file.mask);
  writeJson(join(out, 'mask.json'), applied);
  const units = unitsOf(layout, file.granularity);
  const removed = units.filter((_, i) => file.mask[i] === '0').reduce((n, u) => n + u.params, 0);
  if (options.json) {
    const summary = {
      pruned: applied.pruned,
      params: { before: layout.totalParams, after: layout.totalParams - removed },
    };
    process.stdout.write(`${JSON.stringify({ ...summary, files: written }, null, 2)}\n`);
  } else
    process.stdout.write(
      `removed ${applied.pruned.join(', ') || 'nothing'}: ${layout.totalParams.toLocaleString('en')} → ` +
        `${(layout.totalParams - removed).toLocaleString('en')} parameters\npruned model: ${written.join(', ')}\n`,
    );
  return 0;
}

export function applyCommand(): Command {
  return new Command('apply')
    .summary("remove a mask's units from a model (another export of it, say)")
    .description(
      'Removes the units a mask names from a model: typically the mask `evop prune` found on one export (fp32, no ' +
        'cache) applied to another export of the same model (fp16, KV cache). Refuses a mask found on another model.',
    )
    .argument('<model>', 'the ONNX model to prune')
    .option('--mask <bits|file>', 'required: the mask, as bits (1 keeps a unit, 0 removes it) or a mask.json')
    .addOption(
      new Option('--granularity <unit>', 'what the bits stand for (default: told by their count)').choices([
        'layer',
        'sublayer',
      ]),
    )
    .option('--out <dir>', 'folder the pruned model and its mask.json are written to', 'evop-applied')
    .option('--json', 'print what was removed and the files written as JSON')
    .action(run(async (args, options) => apply(args, options)));
}
