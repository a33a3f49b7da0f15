// Workflow code for the stuck-run test: the production workflows, except that csvImportWorkflow
// starts with a timer where the deployed one schedules an activity. A run started by the
// deployed code and replayed by this one fails every workflow task with a non-determinism error:
// the deploy mistake that recorded-history replay (test/replay.test.ts) exists to catch.
import { sleep } from "@temporalio/workflow";

export {
  batchCreationWorkflow,
  batchStatusWorkflow,
  historyRetentionWorkflow,
  importProcessingWorkflow,
  sessionProcessingWorkflow,
} from "../../workflows/index.ts";

export async function csvImportWorkflow(): Promise<void> {
  await sleep("1 day");
}
