import { join } from "node:path";
import { runMain } from "../adapters/process-lifecycle.ts";
import {
  ensureTemporalCli,
  findTemporalCli,
  installTemporalCli,
  PROJECT_ROOT,
  startTemporalDevServer,
} from "./services/temporal.ts";

/**
 * `tsx scripts/temporal-cli.ts install|path|start`: installs the pinned Temporal CLI, prints
 * where it is, or runs a dev server with its UI (SQLite under .data/) until Ctrl-C.
 */
runMain(async () => {
  const command = process.argv[2] ?? "path";
  if (command === "install") {
    process.stdout.write(`${findTemporalCli() ?? (await installTemporalCli())}\n`);
  } else if (command === "path") {
    process.stdout.write(`${await ensureTemporalCli()}\n`);
  } else if (command === "start") {
    const server = await startTemporalDevServer({
      cli: await ensureTemporalCli(),
      dbFile: join(PROJECT_ROOT, ".data", "temporal.sqlite"),
      port: 7233,
      uiPort: 8233,
      stdio: "inherit",
      logLevel: "warn",
    });
    process.stdout.write(`Temporal dev server on ${server.address}, UI at ${server.uiUrl}\n`);
    const stop = () => void server.stop().then(() => process.exit(0));
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  } else {
    throw new Error(`Unknown command "${command}": use install, path or start`);
  }
});
