export { DataFileNotFoundError, dataDirs, resolveDataFile } from './data-files.ts';
export { ConfigError, type RuntimeConfig, runtimeConfig } from './runtime-config.ts';
