import { loadConfig, requireDatabaseUrl } from "../adapters/config.ts";
import { createDatabase } from "../adapters/db/client.ts";
import { createLogger } from "../adapters/logger.ts";
import { onShutdownSignal, runMain } from "../adapters/process-lifecycle.ts";
import { connectTemporalClient } from "../adapters/temporal.ts";
import { within } from "../control-plane/schedule-facts.ts";
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
