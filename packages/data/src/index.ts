export { ArtifactClient, type ArtifactClientOptions } from './artifact-client.ts';
export {
  ArtifactError,
  ArtifactStore,
  ArtifactTooLargeError,
  hashFile,
  linkOrCopy,
} from './artifact-store.ts';
export {
  CorpusError,
  corpusDocuments,
  countCorpusDocuments,
  readCorpus,
  type StreamedDocument,
} from './corpus.ts';
export { HfTokenizer } from './hf-tokenizer.ts';
export { Llama2cTokenizer } from './llama2c-tokenizer.ts';
export { loadTokenizer, TOKENIZER_CONFIG, tokenizerFiles } from './load-tokenizer.ts';
export {
  linkFiles,
  type ModelFile,
  type ModelManifest,
  parseManifest,
  SAFE_FILE_NAME,
  serializeManifest,
} from './model-manifest.ts';
export {
  type ChoiceRequest,
  type MultipleChoiceItem,
  readTask,
  TASKS,
  TaskFileError,
  type TaskName,
} from './multiple-choice.ts';
export { TokenWindows, windowsFromDocuments } from './token-windows.ts';
export { type Tokenizer, TokenizerFileError } from './tokenizer.ts';
