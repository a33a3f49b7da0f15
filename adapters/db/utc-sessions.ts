import type pg from "pg";
import { parse } from "pg-connection-string";

const UTC = "-c TimeZone=UTC";

/**
 * Every session in UTC. Prisma writes and reads timestamp columns as UTC, while SQL's now() and
 * CURRENT_TIMESTAMP follow the session's TimeZone: on a server set to another zone, a lease, a
 * wait or a default written in SQL would be off by that zone's offset. The app's pool and the
 * migration tooling's pools both use this, so a column default a migration fills in is UTC too.
 *
 * node-postgres lets a connection string's `options` override the pool's, so the URL is parsed
 * here with node-postgres's own parser (every form it accepts, socket hosts included) and handed
 * over as fields, its `options` (else PGOPTIONS, which a set `options` would shadow) kept, UTC last.
 */
export function withUtcSessions(databaseUrl: string): pg.PoolConfig {
  // The fields node-postgres itself would read from the URL, in the shape it reads them.
  const fields = parse(databaseUrl) as pg.PoolConfig;
  const given = fields.options ?? process.env.PGOPTIONS;
  return { ...fields, options: given ? `${given} ${UTC}` : UTC };
}
