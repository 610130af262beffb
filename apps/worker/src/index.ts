export { embedProcessor } from './embed-processor.ts';
export { exportProcessor } from './export-processor.ts';
export { fitnessProcessor } from './fitness-processor.ts';
export { Models } from './models.ts';
export { WindowSets } from './window-sets.ts';
