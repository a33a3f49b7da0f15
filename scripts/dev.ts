import { join } from "node:path";
import { loadConfig } from "../lib/config.ts";
import { createDatabase } from "../lib/db.ts";
import { createLogger } from "../lib/logger.ts";
import { onShutdownSignal, runMain } from "../lib/main.ts";
import { applyMigrations } from "../lib/migrations.ts";
import { startPlatform } from "../lib/platform.ts";
import { schedulerDefinitions } from "../lib/schedulers.ts";
import { kickStartSchedules } from "../lib/schedules.ts";
import { connectTemporalClient } from "../lib/temporal.ts";
import { startOpenAIStandIn } from "../openai-stand-in/server.ts";
import { seedDemoCompanies } from "./demo/seed.ts";
import { startDemoSource } from "./demo/source.ts";
import {
  createDatabase as createPgDatabase,
  databaseExists,
  databaseUrlFor,
  startEmbeddedPostgres,
} from "./services/postgres.ts";
import { ensureTemporalCli, PROJECT_ROOT, startTemporalDevServer } from "./services/temporal.ts";

/**
 * `npm run dev`: the whole system on embedded defaults. Starts what is not configured (Temporal
 * dev server with UI, embedded PostgreSQL), migrates, serves and seeds demo companies, then runs
 * the API and every worker in this process. Ctrl-C stops all of it.
 */
const DATA_DIR = join(PROJECT_ROOT, ".data");
const DEMO_SOURCE_PORT = Number(process.env.DEMO_SOURCE_PORT ?? 3101);

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
      const server = await startTemporalDevServer({
        cli,
        dbFile: join(DATA_DIR, "temporal.sqlite"),
        port: 7233,
        uiPort: 8233,
        logLevel: "error",
      });
      stops.push(server.stop);
      config.temporal.address = server.address;
      log.info(
        { address: server.address, ui: server.uiUrl },
        "Temporal dev server started (Web UI: http://localhost:8233)",
      );
    }

    let databaseUrl = config.databaseUrl;
    if (databaseUrl) {
      log.info("using the PostgreSQL database at DATABASE_URL");
    } else {
      const pg = await startEmbeddedPostgres({ dataDir: join(DATA_DIR, "postgres") });
      stops.push(pg.stop);
      if (!(await databaseExists(pg.adminUrl, "livedash")))
        await createPgDatabase(pg.adminUrl, "livedash");
      databaseUrl = databaseUrlFor(pg.adminUrl, "livedash");
      config.databaseUrl = databaseUrl;
      log.info(
        { port: new URL(databaseUrl).port, dataDir: join(DATA_DIR, "postgres") },
        "embedded PostgreSQL started",
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
