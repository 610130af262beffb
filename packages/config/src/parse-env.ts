import type { z } from 'zod';
import { UserError } from './user-error.ts';

/** An environment variable with a value evop cannot use; names the variable and what it accepts. */
export class ConfigError extends UserError {
  override readonly name = 'ConfigError';
}

/** The environment checked against a schema; the first bad variable is named with its value and the reason. */
export function parseEnv<T>(schema: z.ZodType<T>, env: NodeJS.ProcessEnv): T {
  const parsed = schema.safeParse(env);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const name = String(issue.path[0]);
  throw new ConfigError(`${name}=${JSON.stringify(env[name])} is invalid: ${issue.message}`);
}
