/**
 * Every session in UTC. Prisma writes and reads timestamp columns as UTC, while SQL's now() and
 * CURRENT_TIMESTAMP follow the session's TimeZone: on a server set to another zone, a lease, a
 * wait or a default written in SQL would be off by that zone's offset. node-postgres lets a
 * URL's `options` override the pool's, so they move from the URL to the pool, UTC last. The
 * migration tooling's pools use it too, so a column default it fills in is UTC as well.
 */
export function withUtcSessions(databaseUrl: string): {
  connectionString: string;
  options: string;
} {
  const utc = "-c TimeZone=UTC";
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    // Not a URL node-postgres can read either: it reports that itself.
    return { connectionString: databaseUrl, options: utc };
  }
  const given = url.searchParams.get("options");
  if (given === null) return { connectionString: databaseUrl, options: utc };
  url.searchParams.delete("options");
  return { connectionString: url.toString(), options: `${given} ${utc}` };
}
