export { DataFileNotFoundError, dataDirs, resolveDataFile } from './data-files.ts';
