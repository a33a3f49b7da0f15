import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { applyMigrations } from "../adapters/db/migrations.ts";
import { createLogger } from "../adapters/logger.ts";
import { freePort } from "../scripts/services/ports.ts";
import {
  createDatabase,
  databaseUrlFor,
  dropDatabase,
  startRunPostgres,
} from "../scripts/services/postgres.ts";
import {
  ensureTemporalCli,
  PROJECT_ROOT,
  startTemporalDevServer,
} from "../scripts/services/temporal.ts";
import { ensureWorkflowBundleFile } from "../workers/workflow-bundle.ts";

declare module "vitest" {
  export interface ProvidedContext {
    temporalAddress: string;
    /**
     * Temporal namespaces for the test files, each leased by one test process at a time
     * (support/namespace-lease.ts): a worker's schedule reconcile lists and deletes orphans
     * namespace-wide, so files that run side by side must not share one. ["default"] on an
     * outside server (then run the integration files one at a time).
     */
    temporalNamespaces: string[];
    /** The test server's Temporal Web UI (else TEMPORAL_UI_URL, else ""). */
    temporalUiUrl: string;
    temporalCli: string;
    /** URL of the PostgreSQL server's maintenance database, for creating test databases. */
    postgresAdminUrl: string;
    /** A migrated database that each test file clones as its own. */
    templateDatabase: string;
    runId: string;
    /**
     * The production workflow bundle file (workers/workflow-bundle.ts): in-process workers load
     * it, and spawned worker processes find it current instead of building their own.
     */
    workflowBundlePath: string;
  }
}

/** More than any project's maxWorkers (vitest.config.ts). */
const TEST_NAMESPACES = 6;

/**
 * Real services for the whole run: a Temporal dev server (or TEMPORAL_ADDRESS) and PostgreSQL
 * (DATABASE_URL's server, or an embedded one), with a freshly migrated template database.
 */
export default async function setup(project: TestProject) {
  const runId = randomBytes(4).toString("hex");
  const cleanups: (() => Promise<void>)[] = [];

  const temporalCli = await ensureTemporalCli();
  let temporalAddress = process.env.TEMPORAL_ADDRESS;
  let temporalUiUrl = process.env.TEMPORAL_UI_URL ?? "";
  let temporalNamespaces = ["default"];
  if (!temporalAddress) {
    temporalNamespaces = Array.from(
      { length: TEST_NAMESPACES },
      (_, i) => `livedash-test-${i + 1}`,
    );
    // With its Web UI: the dashboard's browser tests drive the Temporal UI too.
    const server = await startTemporalDevServer({
      cli: temporalCli,
      port: await freePort(),
      uiPort: await freePort(),
      uiNoNews: true,
      extraNamespaces: temporalNamespaces,
    });
    temporalAddress = server.address;
    temporalUiUrl = server.uiUrl ?? "";
    cleanups.push(server.stop);
  }

  const postgres = await startRunPostgres(join(PROJECT_ROOT, ".data", `test-postgres-${runId}`));
  cleanups.push(postgres.stop);
  const postgresAdminUrl = postgres.adminUrl;

  const templateDatabase = `livedash_test_${runId}_template`;
  await createDatabase(postgresAdminUrl, templateDatabase);
  cleanups.push(async () => {
    await dropTestDatabases(postgresAdminUrl, runId);
  });
  await applyMigrations(databaseUrlFor(postgresAdminUrl, templateDatabase));

  const bundlePath = await ensureWorkflowBundleFile(createLogger("warn", "test-setup"));

  project.provide("temporalAddress", temporalAddress);
  project.provide("temporalUiUrl", temporalUiUrl);
  project.provide("temporalNamespaces", temporalNamespaces);
  project.provide("temporalCli", temporalCli);
  project.provide("postgresAdminUrl", postgresAdminUrl);
  project.provide("templateDatabase", templateDatabase);
  project.provide("runId", runId);
  project.provide("workflowBundlePath", bundlePath);

  return async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
}

async function dropTestDatabases(adminUrl: string, runId: string) {
  const pg = await import("pg");
  const client = new pg.default.Client({ connectionString: adminUrl });
  await client.connect();
  const { rows } = await client.query<{ datname: string }>(
    "SELECT datname FROM pg_database WHERE datname LIKE $1",
    [`livedash_test_${runId}_%`],
  );
  await client.end();
  for (const { datname } of rows) await dropDatabase(adminUrl, datname);
}
