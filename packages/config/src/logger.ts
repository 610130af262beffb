import { pino } from 'pino';

export type Logger = pino.Logger;

/** The services' structured logger: JSON lines on stdout, bound to the process's role. */
export function createLogger(service: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name: service, level, base: { service, pid: process.pid } });
}
