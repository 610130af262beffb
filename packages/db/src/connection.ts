import pg from 'pg';

/** PostgreSQL connection settings from DATABASE_URL, as the discrete fields adapter-pg needs. */
export function connectionOptions(url = process.env.DATABASE_URL): pg.ClientConfig {
  if (!url) throw new Error('DATABASE_URL is not set (e.g. postgresql://evop:evop@127.0.0.1:5432/evop)');
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.slice(1)),
    // Doubles round-trip exactly (fitness values are compared, so 15 significant digits are not enough).
    options: '-c extra_float_digits=3',
  };
}

// Prisma 6's JS engine cannot read PostgreSQL's name/char-like column types (prisma/orm#27403), which its own
// migration queries return; reporting them as text (oid 25, arrays 1009) is what it can read.
const TEXT_LIKE: Record<number, number> = {
  18: 25,
  19: 25,
  24: 25,
  28: 25,
  194: 25,
  2205: 25,
  2206: 25,
  1002: 1009,
  1003: 1009,
};

function remapFields<T>(result: T): T {
  for (const field of (result as { fields?: { dataTypeID: number }[] } | undefined)?.fields ?? [])
    field.dataTypeID = TEXT_LIKE[field.dataTypeID] ?? field.dataTypeID;
  return result;
}

/** A pg.Client whose query results report name-like column types as text. */
export class RemappingClient extends pg.Client {
  // biome-ignore lint/suspicious/noExplicitAny: pg's query() has a dozen overloads; all pass through unchanged.
  override query(...args: any[]): any {
    // pg.Pool calls query(config, callback): the callback's result needs the same remapping as a promise's.
    const last = args.length - 1;
    if (typeof args[last] === 'function') {
      const callback = args[last];
      // biome-ignore lint/suspicious/noExplicitAny: pg's callback signature.
      args[last] = (err: unknown, res: any) => callback(err, err ? res : remapFields(res));
    }
    // biome-ignore lint/suspicious/noExplicitAny: see above.
    const result = (super.query as any)(...args);
    return result && typeof result.then === 'function' ? result.then(remapFields) : result;
  }
}
