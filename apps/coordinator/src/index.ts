export { type PruneJobData, PruneProcessor } from './prune-processor.ts';
