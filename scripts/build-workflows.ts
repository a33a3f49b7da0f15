import { createLogger } from "../adapters/logger.ts";
import { runMain } from "../adapters/process-lifecycle.ts";
import { writeWorkflowBundle } from "../workers/workflow-bundle.ts";

// `npm run build:workflows`: bundles the workflow code into .build/ so workers load a finished
// file instead of running webpack themselves (the image build runs this; workers call it too
// when the file is missing or out of date).
runMain(async () => {
  const log = createLogger(undefined, "build-workflows");
  const started = Date.now();
  const path = await writeWorkflowBundle(log);
  log.info({ path, ms: Date.now() - started }, "workflow bundle written");
});
