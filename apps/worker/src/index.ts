export { fitnessProcessor } from './fitness-processor.ts';
