export type { PruneReport, ReportRow } from '@evop/pipeline';
export { main } from './main.ts';
export { Stack, type StackOptions, type StackProcess } from './stack.ts';
