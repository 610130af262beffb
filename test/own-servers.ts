import { execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const waitUntil = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 100; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not come up`);
};

const answers = (command: string, args: string[]) => {
  try {
    execFileSync(command, args, { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
};

/**
 * A Redis server of the test's own on a free port, persisting every write (append-only file, fsync always), so
 * that a restart loses nothing: the machine's shared server is never stopped.
 */
export async function ownRedis(dir: string) {
  const port = await freePort();
  mkdirSync(dir, { recursive: true });
  const ping = () => answers('redis-cli', ['-p', String(port), 'ping']);
  const start = async () => {
    spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
      ],
      { stdio: 'ignore', detached: true },
    ).unref();
    await waitUntil(ping, 'redis-server');
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    start,
    /** SHUTDOWN: the server writes what it has and exits. */
    async stop() {
      answers('redis-cli', ['-p', String(port), 'shutdown']);
      await waitUntil(() => !ping(), 'redis-server shutdown');
    },
  };
}

/**
 * A PostgreSQL cluster of the test's own (initdb, trust auth) on a free port, started and stopped with pg_ctl;
 * `dir` must be a folder of its own directly under a world-readable one (it is given to the postgres user).
 */
export async function ownPostgres(dir: string) {
  const port = await freePort();
  const bin = join(
    '/usr/lib/postgresql',
    execFileSync('ls', ['/usr/lib/postgresql']).toString().trim().split('\n').sort().at(-1)!,
    'bin',
  );
  const data = join(dir, 'pgdata');
  mkdirSync(data, { recursive: true });
  // PostgreSQL refuses to run as root: as root, run it as the postgres user.
  const asOwner = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
  if (asOwner.length) {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString());
    for (const d of [dir, data]) chownSync(d, id('-u'), id('-g'));
  }
  const run = (tool: string, args: string[]) =>
    execFileSync(
      asOwner[0] ?? join(bin, tool),
      [...asOwner.slice(1), ...(asOwner.length ? [join(bin, tool)] : []), ...args],
      {
        stdio: 'pipe',
      },
    );
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const start = () =>
    run('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'postgres.log'), '-w', 'start']);
  const stop = () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
  start();
  return { url: `postgresql://postgres@127.0.0.1:${port}/postgres`, start, stop };
}
