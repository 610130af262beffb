export { main } from './main.ts';
export type { PruneReport, ReportRow } from './report.ts';
