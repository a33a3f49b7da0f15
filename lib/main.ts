import { existsSync } from "node:fs";
import { ConfigError } from "./config.ts";

/**
 * Runs an entry point: a configuration problem ends the process with the message naming the
 * variable (no stack trace), anything else with its stack.
 */
export function runMain(main: () => Promise<void>): void {
  // A local .env (see .env.example) fills in what the shell did not set.
  if (existsSync(".env")) process.loadEnvFile(".env");
  main().catch((error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
    } else {
      process.stderr.write(
        `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    }
    process.exit(1);
  });
}

/** Calls `stop` once on SIGINT/SIGTERM; a second signal exits at once. */
export function onShutdownSignal(stop: (signal: NodeJS.Signals) => Promise<void> | void): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    void Promise.resolve(stop(signal)).catch((error: unknown) => {
      process.stderr.write(`shutdown failed: ${String(error)}\n`);
      process.exit(1);
    });
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}
