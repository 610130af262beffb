import type { DecoderLayout } from './decoder-layout.ts';
import { MaskError } from './errors.ts';
import { sampleTensor } from './model-file.ts';
import type { ModelProto } from './proto.ts';
import { checkMask, type Granularity, unitsOf } from './units.ts';

/**
 * What identifies a model across its exports (either exporter, fp32 or fp16, with or without a KV cache): its
 * sizes, its sub-blocks with their parameter counts, and values spread over its token embedding.
 */
export interface ModelFingerprint {
  vocabSize: number;
  hiddenSize: number;
  units: { id: string; params: number }[];
  embedding: number[];
}

/** mask.json: a search's answer, for this model or another export of it (`evop apply`). */
export interface MaskFile {
  mask: string;
  granularity: Granularity;
  /** Unit ids, one per mask character. */
  units: string[];
  pruned: string[];
  /** The model the mask was found on. */
  source?: { sha256: string; fingerprint: ModelFingerprint };
}

const EMBEDDING_SAMPLES = 16;

export function fingerprintOf(model: ModelProto, layout: DecoderLayout): ModelFingerprint {
  const embedding = model.graph.initializer.find((t) => t.name === layout.embedding);
  return {
    vocabSize: layout.vocabSize,
    hiddenSize: layout.hiddenSize,
    units: unitsOf(layout, 'sublayer').map((u) => ({ id: u.id, params: u.params })),
    embedding: embedding ? sampleTensor(embedding, EMBEDDING_SAMPLES) : [],
  };
}

export function maskFileOf(
  model: { proto: ModelProto; sha256: string },
  layout: DecoderLayout,
  granularity: Granularity,
  mask: string,
): MaskFile {
  const units = unitsOf(layout, granularity);
  checkMask(mask, units);
  return {
    mask,
    granularity,
    units: units.map((u) => u.id),
    pruned: units.filter((_, i) => mask[i] === '0').map((u) => u.id),
    source: { sha256: model.sha256, fingerprint: fingerprintOf(model.proto, layout) },
  };
}

/**
 * Checks that a mask found on one export fits this model: the same units in the same order and, where the
 * mask file records its source, the same model (sizes, parameters per unit within 1 %, embedding values within
 * half precision). Throws a MaskError naming the first difference.
 */
export function checkMaskFits(file: MaskFile, layout: DecoderLayout, fingerprint: ModelFingerprint): void {
  const units = unitsOf(layout, file.granularity).map((u) => u.id);
  checkMask(file.mask, unitsOf(layout, file.granularity));
  if (file.units.join() !== units.join())
    throw new MaskError(
      `the mask's units (${file.units.join(', ')}) are not this model's (${units.join(', ')})`,
    );
  const source = file.source?.fingerprint;
  if (!source) return;
  const differs = (what: string, theirs: unknown, ours: unknown) =>
    new MaskError(
      `the mask was found on another model: its ${what} is ${String(theirs)}, this model's is ${String(ours)}`,
    );
  if (source.vocabSize !== fingerprint.vocabSize)
    throw differs('vocabulary', source.vocabSize, fingerprint.vocabSize);
  if (source.hiddenSize !== fingerprint.hiddenSize)
    throw differs('hidden size', source.hiddenSize, fingerprint.hiddenSize);
  source.units.forEach((unit, i) => {
    const ours = fingerprint.units[i];
    if (!ours || ours.id !== unit.id || Math.abs(ours.params - unit.params) > 0.01 * unit.params)
      throw differs(
        `unit ${unit.id}`,
        `${unit.params} parameters`,
        ours ? `${ours.params} (${ours.id})` : 'absent',
      );
  });
  const far = source.embedding.findIndex(
    (v, i) => !(Math.abs(v - fingerprint.embedding[i]!) <= 1e-2 * Math.abs(v) + 1e-4),
  );
  if (source.embedding.length !== fingerprint.embedding.length || far >= 0)
    throw differs(
      'token embedding',
      `${source.embedding[far] ?? '?'} at sample ${far}`,
      String(fingerprint.embedding[far] ?? '?'),
    );
}
