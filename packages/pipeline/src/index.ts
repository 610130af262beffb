export * from './control.ts';
export { type FinalizeOptions, finalize, memoryStages, type StageStore } from './finalize.ts';
export { PrefixEvaluator, prefixLength } from './prefix-evaluator.ts';
