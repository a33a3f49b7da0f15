import { loadConfig, requireDatabaseUrl } from "../lib/config.ts";
import { createLogger } from "../lib/logger.ts";
import { onShutdownSignal, runMain } from "../lib/main.ts";
import { startPlatform } from "../lib/platform.ts";

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
