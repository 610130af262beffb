import { basename } from 'node:path';
import { CorpusError, countCorpusDocuments, loadTokenizer } from '@evop/data';
import { type DecoderLayout, discoverLayers, ModelError, readModel } from '@evop/onnx';
import { checkVocabulary, PipelineError } from '@evop/pipeline/control';

/**
 * The body of the API's upload-check threads (UploadChecker). Reading a model of many GiB, finding its layers and
 * parsing a corpus of 150 MB cost seconds of CPU that the server's event loop must not spend: every request of
 * every tenant would wait. A refusal comes back as the field and the reason (error classes do not cross threads).
 */
export type CheckOutcome<T> = { ok: T } | { field: string; reason: string };

export type UploadCheck = ({ kind: 'model' } & ModelCheck) | ({ kind: 'corpus' } & CorpusCheck);

export type ModelChecked = { sha256: string; layout: DecoderLayout; externalFiles: string[] };

/** One check (piscina needs the module's default export). */
export default async function check(
  task: UploadCheck,
): Promise<CheckOutcome<ModelChecked | { documents: number }>> {
  return task.kind === 'model' ? model(task) : corpus(task);
}

export interface CorpusCheck {
  path: string;
  field: string;
  /** The file's name as the client sent it, which errors use in place of the staged path. */
  shownAs: string;
}

export interface ModelCheck {
  /** The staged .onnx file, its external-data files beside it. */
  modelPath: string;
  /** The model's files by name and sha256 (hashed on their way in, so not read again); the .onnx file first. */
  files: { name: string; sha256: string }[];
  /** The field refusals of the model are answered under. */
  field: string;
  /** The staged tokenizer, whose vocabulary must fit the model's; absent where only the layout is wanted. */
  tokenizerPath?: string;
}

function model(check: ModelCheck): CheckOutcome<ModelChecked> {
  const refuse = (reason: string, field = check.field) => ({ field, reason });
  let loaded: ReturnType<typeof readModel>;
  try {
    loaded = readModel(check.modelPath, {
      fileSha256: Object.fromEntries(check.files.map((f) => [f.name, f.sha256])),
    });
  } catch (err) {
    return refuse(`not a readable ONNX model (${(err as Error).message})`);
  }
  let layout: DecoderLayout;
  try {
    layout = discoverLayers(loaded.proto);
  } catch (err) {
    return refuse(
      err instanceof ModelError ? err.message : `not a decoder-only transformer (${(err as Error).message})`,
    );
  }
  if (check.tokenizerPath) {
    try {
      checkVocabulary(layout, loadTokenizer(check.tokenizerPath));
    } catch (err) {
      return refuse(err instanceof PipelineError ? err.reason : (err as Error).message, 'tokenizer');
    }
  }
  const externalFiles = [
    ...new Set(
      loaded.proto.graph!.initializer.flatMap((t) =>
        t.externalData.filter((e) => e.key === 'location').map((e) => basename(e.value)),
      ),
    ),
  ];
  return { ok: { sha256: loaded.sha256, layout, externalFiles } };
}

async function corpus(check: CorpusCheck): Promise<CheckOutcome<{ documents: number }>> {
  try {
    return { ok: { documents: await countCorpusDocuments(check.path) } };
  } catch (err) {
    if (err instanceof CorpusError)
      return { field: check.field, reason: err.message.replaceAll(check.path, check.shownAs) };
    throw err;
  }
}
