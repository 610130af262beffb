export type { PruneReport, ReportRow } from '@evop/pipeline';
export { main } from './main.ts';
