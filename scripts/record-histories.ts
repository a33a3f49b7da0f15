import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ScheduleOverlapPolicy } from "@temporalio/client";
import proto from "@temporalio/proto";
import { loadConfig } from "../adapters/config.ts";
import { createDatabase as createPrisma } from "../adapters/db/client.ts";
import { applyMigrations } from "../adapters/db/migrations.ts";
import { createLogger } from "../adapters/logger.ts";
import { runMain } from "../adapters/process-lifecycle.ts";
import { connectTemporalClient } from "../adapters/temporal.ts";
import {
  maintenanceDefinitions,
  schedulerDefinitions,
} from "../control-plane/scheduler-registry.ts";
import { WORKER_TYPES } from "../domain/scheduler-id.ts";
import { startOpenAIStandIn } from "../openai-stand-in/server.ts";
import { startWorkers } from "../workers/runtime.ts";
import { bundleWorkflows } from "../workers/workflow-bundle.ts";
import { seedDemoCompanies } from "./demo/seed.ts";
import { startDemoSource } from "./demo/source.ts";
import { freePort } from "./services/ports.ts";
import {
  createDatabase,
  databaseUrlFor,
  dropDatabase,
  startRunPostgres,
} from "./services/postgres.ts";
import { ensureTemporalCli, PROJECT_ROOT, startTemporalDevServer } from "./services/temporal.ts";

/**
 * `npm run test:record-histories`: records one real run of every workflow type (the pipeline in
 * order, against the demo companies, the OpenAI stand-in and a Temporal dev server) into
 * test/fixtures/histories/<workflowType>.json. test/replay.test.ts replays them against the
 * current workflow code, so a change that would break runs in flight fails `npm test`.
 *
 * Re-record only when a change is meant to be incompatible AND is shipped with Worker
 * Versioning (docs/deployment.md, "Changing workflow code"); keep the old fixture next to the
 * new one while runs of the old version may still be open.
 */
// CommonJS package: Node's ESM loader sees only its default export.
const historyProto = proto.temporal.api.history.v1.History;
const OUT_DIR = join(PROJECT_ROOT, "test", "fixtures", "histories");
const NEVER = "0 0 1 1 *";

runMain(async () => {
  const log = createLogger("warn", "record-histories");
  const stops: (() => Promise<void>)[] = [];
  try {
    let address = process.env.TEMPORAL_ADDRESS;
    if (!address) {
      const server = await startTemporalDevServer({
        cli: await ensureTemporalCli(),
        port: await freePort(),
        headless: true,
        logLevel: "error",
      });
      stops.push(server.stop);
      address = server.address;
    }
    const postgres = await startRunPostgres(join(PROJECT_ROOT, ".data", `record-${process.pid}`));
    stops.push(postgres.stop);
    const dbName = `livedash_record_${process.pid}`;
    await createDatabase(postgres.adminUrl, dbName);
    stops.push(() => dropDatabase(postgres.adminUrl, dbName));
    const databaseUrl = databaseUrlFor(postgres.adminUrl, dbName);
    await applyMigrations(databaseUrl);

    const standIn = await startOpenAIStandIn();
    stops.push(standIn.close);
    const source = await startDemoSource({ port: await freePort() });
    stops.push(source.close);
    const db = createPrisma(databaseUrl, { poolSize: 5 });
    stops.push(() => db.$disconnect());
    await seedDemoCompanies(db, source);

    const config = loadConfig({
      TEMPORAL_ADDRESS: address,
      DATABASE_URL: databaseUrl,
      REGION: `rec${process.pid}`,
      OPENAI_API_KEY: "stand-in",
      OPENAI_BASE_URL: standIn.url,
      BATCH_MIN_REQUESTS: "1",
      FETCH_ALLOWED_HOSTS: "127.0.0.1",
      LOG_LEVEL: "warn",
      CSV_IMPORT_INTERVAL: NEVER,
      IMPORT_PROCESSING_INTERVAL: NEVER,
      SESSION_PROCESSING_INTERVAL: NEVER,
      BATCH_PROCESSING_INTERVAL: NEVER,
      BATCH_PROCESSING_CHECK_INTERVAL: NEVER,
      SCHEDULER_HISTORY_RETENTION_INTERVAL: NEVER,
    });
    const workers = await startWorkers({
      config,
      db,
      log,
      types: WORKER_TYPES,
      workflowBundle: await bundleWorkflows(log),
    });
    stops.push(workers.shutdown);
    const temporal = await connectTemporalClient(config);
    stops.push(() => temporal.connection.close());

    mkdirSync(OUT_DIR, { recursive: true });
    // In pipeline order, so each run has work: imports, sessions, requests, a batch to poll; then
    // the maintenance (history retention).
    for (const def of [...schedulerDefinitions(config), ...maintenanceDefinitions(config)]) {
      const handle = temporal.client.schedule.getHandle(def.scheduleId);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await handle.trigger(ScheduleOverlapPolicy.ALLOW_ALL);
      let workflowId: string | undefined;
      for (let i = 0; i < 100 && !workflowId; i++) {
        workflowId = (await handle.describe()).info.recentActions.at(-1)?.action.workflow
          .workflowId;
        if (!workflowId) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      if (!workflowId) throw new Error(`${def.scheduleId} started no run`);
      const run = temporal.client.workflow.getHandle(workflowId);
      await run.result();
      const history = await run.fetchHistory();
      const file = join(OUT_DIR, `${def.workflowType}.json`);
      writeFileSync(
        file,
        `${JSON.stringify(historyProto.fromObject(history).toJSON(), null, 1)}\n`,
      );
      process.stdout.write(
        `recorded ${def.workflowType} (${history.events?.length} events) -> ${file}\n`,
      );
    }
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
  process.exit(0);
});
