import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Client } from "@temporalio/client";
import proto from "@temporalio/proto";

const FIXTURES = fileURLToPath(new URL("../fixtures/histories/", import.meta.url));

/**
 * With RECORD_HISTORIES=1, keeps a run's history as test/fixtures/histories/<name>.json, which
 * test/replay.test.ts replays against every later version of the workflow code: for runs that
 * take paths (patches) the pipeline recording (`npm run test:record-histories`) does not.
 */
export async function keepHistory(client: Client, workflowId: string, name: string): Promise<void> {
  if (process.env.RECORD_HISTORIES !== "1") return;
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const json = proto.temporal.api.history.v1.History.fromObject(history).toJSON();
  writeFileSync(`${FIXTURES}${name}.json`, `${JSON.stringify(json, null, 1)}\n`);
}
