import { loadConfig, requireDatabaseUrl } from "../lib/config.ts";
import { createDatabase } from "../lib/db.ts";
import { createLogger } from "../lib/logger.ts";
import { onShutdownSignal, runMain } from "../lib/main.ts";
import { within } from "../lib/schedule-facts.ts";
import { connectTemporalClient } from "../lib/temporal.ts";
import { startApiServer } from "./server.ts";

// The API alone; workers run in their own processes (npm run scheduler:<type>). It still reports
// every scheduler's health from Temporal and the run table.
runMain(async () => {
  const config = loadConfig();
  const log = createLogger(config.logLevel, "api");
  const db = createDatabase(requireDatabaseUrl(config), { poolSize: config.databasePoolSize });
  // The connection opens lazily: the API starts while Temporal is down, answers health with the
  // schedulers ERROR and /readyz 503 naming Temporal, and recovers once Temporal is back.
  const { client, connection } = await connectTemporalClient(config);
  within(client.workflowService.getSystemInfo({}), 5_000, "Temporal").catch((error: unknown) =>
    log.error(
      { err: error, address: config.temporal.address ?? "127.0.0.1:7233" },
      "Temporal is unreachable at startup: the API runs and reports it (health ERROR, /readyz 503)",
    ),
  );
  // Prisma's first query loads its query engine: done before listening, so the first health
  // check is as quick as the others (and a database outage is logged at once).
  await db.$queryRaw`SELECT 1`.catch((error: unknown) =>
    log.error({ err: error }, "PostgreSQL is unreachable at startup: the API runs and reports it"),
  );
  let stopping = false;
  const api = await startApiServer({
    config,
    client,
    db,
    log,
    readiness: () => [
      { name: "shutdown", ok: !stopping, ...(stopping ? { detail: "shutting down" } : {}) },
    ],
  });
  onShutdownSignal(async () => {
    stopping = true;
    await api.close();
    await connection.close();
    await db.$disconnect();
    process.exit(0);
  });
});
