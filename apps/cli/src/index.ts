export type { PruneReport, ReportRow } from '@evop/pipeline';
export { main } from './main.ts';
export { artifactDirOf, STACK_DATA_DIR, Stack, type StackOptions, type StackProcess } from './stack.ts';
