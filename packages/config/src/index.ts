export { DataFileNotFoundError, dataDirs, resolveDataFile } from './data-files.ts';
export { createLogger, type Logger } from './logger.ts';
export { ConfigError } from './parse-env.ts';
export { networkReason, RETRY_DELAYS_MS, Unavailable, withRetries } from './retry.ts';
export { type RuntimeConfig, runtimeConfig, tokensPerRun } from './runtime-config.ts';
export { requireServiceToken, type ServiceConfig, serviceConfig } from './service-config.ts';
export { type ShutdownStep, stopOnSignals } from './shutdown.ts';
export { threadModule } from './thread-module.ts';
export { UserError } from './user-error.ts';
