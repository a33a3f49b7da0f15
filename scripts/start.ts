import { loadConfig, requireDatabaseUrl } from "../adapters/config.ts";
import { createLogger } from "../adapters/logger.ts";
import { onShutdownSignal, runMain } from "../adapters/process-lifecycle.ts";
import { startPlatform } from "../platform/composition-root.ts";

// `npm start`: API and every worker in one process, against TEMPORAL_ADDRESS and DATABASE_URL.
runMain(async () => {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const platform = await startPlatform(config, requireDatabaseUrl(config), log);
  onShutdownSignal(async (signal) => {
    log.info({ signal }, "shutting down");
    await platform.stop();
    process.exit(0);
  });
});
