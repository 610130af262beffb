import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CliError } from '../cli-error.ts';

/** Where an evop service is and the API key to use there. */
export interface Credentials {
  url: string;
  key: string;
}

/** `$XDG_CONFIG_HOME/evop/credentials.json`, or `~/.config/evop/credentials.json`. */
export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'evop', 'credentials.json');
}

/** Stored for the user alone (0600 in a 0700 folder), replaced whole so that a crash leaves the old file. */
export function saveCredentials(credentials: Credentials, path = credentialsPath()): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.tmp-${process.pid}`;
  writeFileSync(temp, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temp, 0o600); // the mode of writeFileSync is masked by the umask
  renameSync(temp, path);
}

function storedCredentials(path: string): Partial<Credentials> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return {};
  }
  try {
    const { url, key } = JSON.parse(text) as Partial<Credentials>;
    return { url, key };
  } catch {
    throw new CliError(`${path}: not valid JSON; log in again with evop remote login`);
  }
}

/** EVOP_API_URL and EVOP_API_KEY, each over what `evop remote login` stored. */
export function loadCredentials(env: NodeJS.ProcessEnv = process.env): Credentials {
  const stored = storedCredentials(credentialsPath(env));
  const url = env.EVOP_API_URL || stored.url;
  const key = env.EVOP_API_KEY || stored.key;
  if (!url || !key)
    throw new CliError(
      `not logged in to an evop service: run 'evop remote login --url URL' (or set EVOP_API_URL and EVOP_API_KEY)`,
    );
  return { url: url.replace(/\/+$/, ''), key };
}
