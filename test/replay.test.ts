import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import proto from "@temporalio/proto";
import { bundleWorkflowCode, Worker } from "@temporalio/worker";
import { describe, expect, inject, it } from "vitest";
import { UNTRACED_SINKS } from "../adapters/tracing.ts";

// CommonJS package: Node's ESM loader sees only its default export.
const { temporal } = proto;

const FIXTURES = fileURLToPath(new URL("./fixtures/histories/", import.meta.url));
/** Every workflow the workers register: each needs a recorded history. */
const WORKFLOW_TYPES = [
  "csvImportWorkflow",
  "importProcessingWorkflow",
  "sessionProcessingWorkflow",
  "batchCreationWorkflow",
  "batchStatusWorkflow",
  "historyRetentionWorkflow",
];

function recordedHistories() {
  return readdirSync(FIXTURES)
    .filter((file) => file.endsWith(".json"))
    .sort()
    .map((file) => ({
      workflowId: file.replace(/\.json$/, ""),
      history: temporal.api.history.v1.History.fromObject(
        JSON.parse(readFileSync(`${FIXTURES}${file}`, "utf8")),
      ),
    }));
}

async function replay(workflowBundle: { code: string } | { codePath: string }) {
  const failures: { workflowId: string; error: string }[] = [];
  let replayed = 0;
  for await (const result of Worker.runReplayHistories(
    { workflowBundle, sinks: UNTRACED_SINKS },
    recordedHistories(),
  )) {
    replayed += 1;
    if (result.error) failures.push({ workflowId: result.workflowId, error: String(result.error) });
  }
  return { replayed, failures };
}

/**
 * Deploys cannot wedge a run: the recorded histories of every workflow type (recorded from real
 * runs by `npm run test:record-histories`) replay against the current workflow code. A change
 * that would make runs in flight fail with a non-determinism error fails here instead; see
 * docs/deployment.md ("Changing workflow code") for patched() and Worker Versioning.
 */
describe("recorded workflow histories replay against the current workflow code", () => {
  it("has a recorded history for every workflow type", () => {
    const recorded = recordedHistories().map((h) => h.workflowId);
    for (const type of WORKFLOW_TYPES) expect(recorded).toContain(type);
  });

  it("replays every recorded history without a non-determinism error", async () => {
    const { replayed, failures } = await replay({ codePath: inject("workflowBundlePath") });
    expect(failures).toEqual([]);
    expect(replayed).toBe(recordedHistories().length);
  });

  it("catches an incompatible change (the check is not hollow)", async () => {
    const incompatible = await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL("./support/incompatible-workflows.ts", import.meta.url)),
      logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} },
    });
    const { failures } = await replay({ code: incompatible.code });
    expect(failures.map((f) => f.workflowId).sort()).toEqual([
      "csvImportWorkflow",
      "csvImportWorkflow-before-retry-owner",
      "csvImportWorkflow-final-failure",
      "csvImportWorkflow-progress-total",
    ]);
    expect(failures[0]?.error).toMatch(/[Nn]ondeterminism/);
  }, 120_000);
});
