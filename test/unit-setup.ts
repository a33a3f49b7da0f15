import { TestWorkflowEnvironment } from "@temporalio/testing";
import type { TestProject } from "vitest/node";
import { createLogger } from "../adapters/logger.ts";
import { ensureTemporalCli } from "../scripts/services/temporal.ts";
import { ensureWorkflowBundleFile } from "../workers/workflow-bundle.ts";

/**
 * The unit layer's one service: an ephemeral Temporal dev server started by @temporalio/testing
 * from the CLI this project installs (`existing-path`, no download), for the workflow tests with
 * mocked activities (test/support/mocked-run.ts), and the production workflow bundle they run
 * (the fingerprinted file workers load, built here only when the sources changed).
 * No PostgreSQL: nothing in the unit layer touches a database.
 */
export default async function setup(project: TestProject) {
  const cli = await ensureTemporalCli();
  const [env, bundlePath] = await Promise.all([
    TestWorkflowEnvironment.createLocal({
      server: { executable: { type: "existing-path", path: cli }, ui: false },
    }),
    ensureWorkflowBundleFile(createLogger("warn", "unit-setup")),
  ]);
  project.provide("temporalAddress", env.address);
  project.provide("temporalNamespaces", ["default"]);
  project.provide("runId", "unit");
  project.provide("workflowBundlePath", bundlePath);
  return async () => {
    await env.teardown();
  };
}
