import { existsSync } from "node:fs";
import { ConfigError } from "./config.ts";

/** A problem the operator fixes (a port in use, ...): shown as its one-line message, no trace. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartupError";
  }
}

/**
 * Runs an entry point: a configuration or startup problem ends the process with its message
 * (no stack trace), anything else with its stack.
 */
export function runMain(main: () => Promise<void>): void {
  // A local .env (see .env.example) fills in what the shell did not set.
  if (existsSync(".env")) process.loadEnvFile(".env");
  main().catch((error: unknown) => {
    if (error instanceof ConfigError || error instanceof StartupError) {
      process.stderr.write(`${error.message}\n`);
    } else {
      process.stderr.write(
        `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    }
    process.exit(1);
  });
}

/**
 * Calls `stop` once on SIGINT/SIGTERM. A signal repeated within a second is the same request
 * (a terminal's Ctrl-C reaches npm, tsx and this process alike); a later one exits at once.
 */
export function onShutdownSignal(stop: (signal: NodeJS.Signals) => Promise<void> | void): void {
  let firstAt: number | undefined;
  const handler = (signal: NodeJS.Signals) => {
    if (firstAt !== undefined) {
      if (Date.now() - firstAt > 1000) process.exit(130);
      return;
    }
    firstAt = Date.now();
    void Promise.resolve(stop(signal)).catch((error: unknown) => {
      process.stderr.write(`shutdown failed: ${String(error)}\n`);
      process.exit(1);
    });
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}
