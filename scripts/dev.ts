import { join } from "node:path";
import { loadConfig, redact } from "../adapters/config.ts";
import { createDatabase } from "../adapters/db/client.ts";
import { applyMigrations } from "../adapters/db/migrations.ts";
import { createLogger } from "../adapters/logger.ts";
import { onShutdownSignal, runMain } from "../adapters/process-lifecycle.ts";
import { connectTemporalClient } from "../adapters/temporal.ts";
import { kickStartSchedules } from "../control-plane/schedule-reconcile.ts";
import { schedulerDefinitions } from "../control-plane/scheduler-registry.ts";
import { startOpenAIStandIn } from "../openai-stand-in/server.ts";
import { startPlatform } from "../platform/composition-root.ts";
import { seedDemoCompanies } from "./demo/seed.ts";
import { startDemoSource } from "./demo/source.ts";
import { startDevPostgres, startDevTemporal } from "./services/dev-services.ts";
import {
  createDatabase as createPgDatabase,
  databaseExists,
  databaseUrlFor,
  EMBEDDED_PG_PORT,
} from "./services/postgres.ts";
import { ensureTemporalCli, PROJECT_ROOT } from "./services/temporal.ts";

/**
 * `npm run dev`: the whole system on embedded defaults. Starts what is not configured (Temporal
 * dev server with UI, embedded PostgreSQL), migrates, serves and seeds demo companies, then runs
 * the API and every worker in this process. Ctrl-C stops all of it.
 */
const DATA_DIR = process.env.DEV_DATA_DIR ?? join(PROJECT_ROOT, ".data");
const DEMO_SOURCE_PORT = Number(process.env.DEMO_SOURCE_PORT ?? 3101);
// Other ports for a second checkout on the same machine.
const TEMPORAL_PORT = Number(process.env.DEV_TEMPORAL_PORT ?? 7233);
const TEMPORAL_UI_PORT = Number(process.env.DEV_TEMPORAL_UI_PORT ?? 8233);
const POSTGRES_PORT = Number(process.env.DEV_POSTGRES_PORT ?? EMBEDDED_PG_PORT);

// A newcomer should see imports within a minute, not ten: faster demo intervals unless set.
const DEV_INTERVALS: Record<string, string> = {
  CSV_IMPORT_INTERVAL: "*/1 * * * *",
  IMPORT_PROCESSING_INTERVAL: "*/1 * * * *",
  SESSION_PROCESSING_INTERVAL: "*/1 * * * *",
  BATCH_PROCESSING_INTERVAL: "*/1 * * * *",
  BATCH_PROCESSING_CHECK_INTERVAL: "*/1 * * * *",
  // Demo companies produce a few sessions a minute: batch them without waiting for ten.
  BATCH_MIN_REQUESTS: "1",
};
const OPENAI_STAND_IN_PORT = Number(process.env.OPENAI_STAND_IN_PORT ?? 4010);

runMain(async () => {
  for (const [name, value] of Object.entries(DEV_INTERVALS)) process.env[name] ??= value;
  process.env.LOG_LEVEL ??= "info";
  // Local development only: the admin API and dashboard without a token (logged as a warning).
  if (!process.env.ADMIN_API_TOKEN) process.env.ADMIN_API_INSECURE ??= "true";
  // The demo CSV source listens on 127.0.0.1, an address fetches refuse unless opened.
  process.env.FETCH_ALLOW_PRIVATE_NETWORKS ??= "127.0.0.1";
  const config = loadConfig();
  const log = createLogger(config.logLevel, "dev");
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse())
      await stop().catch((error: unknown) => log.error({ err: error }, "stop failed"));
  };
  onShutdownSignal(async () => {
    log.info("stopping everything npm run dev started");
    await stopAll();
    process.exit(0);
  });

  try {
    if (config.temporal.address) {
      log.info(
        { address: config.temporal.address },
        "using the Temporal server at TEMPORAL_ADDRESS",
      );
    } else {
      const cli = await ensureTemporalCli();
      const server = await startDevTemporal({
        cli,
        dataDir: DATA_DIR,
        port: TEMPORAL_PORT,
        uiPort: TEMPORAL_UI_PORT,
        log: (message) => log.warn(message),
      });
      stops.push(server.stop);
      config.temporal.address = server.address;
      if (!process.env.TEMPORAL_UI_URL)
        config.temporal.uiUrl = `http://localhost:${TEMPORAL_UI_PORT}`;
      log.info(
        { address: server.address, ui: config.temporal.uiUrl },
        `Temporal dev server started (Web UI: ${config.temporal.uiUrl})`,
      );
    }

    let databaseUrl = config.databaseUrl;
    if (databaseUrl) {
      log.info("using the PostgreSQL database at DATABASE_URL");
    } else {
      const pg = await startDevPostgres({
        dataDir: DATA_DIR,
        port: POSTGRES_PORT,
        log: (message) => log.warn(message),
      });
      stops.push(pg.stop);
      if (!(await databaseExists(pg.adminUrl, "livedash")))
        await createPgDatabase(pg.adminUrl, "livedash");
      databaseUrl = databaseUrlFor(pg.adminUrl, "livedash");
      config.databaseUrl = databaseUrl;
      log.info(
        { url: redact(databaseUrl), dataDir: join(DATA_DIR, "postgres") },
        "embedded PostgreSQL started (user postgres, password livedash-dev: see README)",
      );
    }

    if (config.openai.apiKey) {
      log.info(
        { baseUrl: config.openai.baseUrl ?? "https://api.openai.com/v1" },
        "OPENAI_API_KEY set: analysing with OpenAI",
      );
    } else {
      const standIn = await startOpenAIStandIn({ port: OPENAI_STAND_IN_PORT });
      stops.push(standIn.close);
      config.openai.baseUrl = standIn.url;
      log.warn(
        { baseUrl: standIn.url },
        "no OPENAI_API_KEY: analysing with the local OpenAI stand-in (deterministic fake answers)",
      );
    }

    const { applied } = await applyMigrations(databaseUrl);
    log.info({ applied }, applied.length ? "migrations applied" : "database schema up to date");

    const source = await startDemoSource({ port: DEMO_SOURCE_PORT });
    stops.push(source.close);
    const seedDb = createDatabase(databaseUrl, { poolSize: 1 });
    const seeded = await seedDemoCompanies(seedDb, source);
    await seedDb.$disconnect();
    log.info(
      { url: source.url, companies: seeded },
      "demo CSV source serving; demo companies seeded",
    );

    const platform = await startPlatform(config, databaseUrl, log);
    stops.push(platform.stop);

    // A first run right away, so data shows up before the first cron tick: only for schedules
    // that never ran. A paused or stopped schedule is never run because a process started.
    const temporal = await connectTemporalClient(config);
    const kicked = await kickStartSchedules(temporal.client, schedulerDefinitions(config));
    await temporal.connection.close();
    if (kicked.length > 0) log.info({ schedules: kicked }, "first runs started");

    log.info(
      {
        health: `http://localhost:${platform.apiPort}/api/admin/schedulers/health`,
        temporalUi: config.temporal.uiUrl,
        schedules: schedulerDefinitions(config).map((d) => `${d.scheduleId} (${d.cron})`),
      },
      "LiveDash scheduler platform is running; Ctrl-C stops it",
    );
  } catch (error) {
    await stopAll();
    throw error;
  }
});
