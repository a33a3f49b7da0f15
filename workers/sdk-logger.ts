import type { LogLevel, LogMetadata, Logger as TemporalLogger } from "@temporalio/common";
import type { Logger } from "../adapters/logger.ts";

const PINO_LEVEL = {
  TRACE: "trace",
  DEBUG: "debug",
  INFO: "info",
  WARN: "warn",
  ERROR: "error",
} as const;

/** The Temporal SDK's logger, writing through ours (one JSON log stream per process). */
export function sdkLogger(log: Logger): TemporalLogger {
  const sdk = log.child({ source: "temporal-sdk" });
  const write = (level: LogLevel, message: string, meta?: LogMetadata) =>
    sdk[PINO_LEVEL[level]](meta ?? {}, message);
  return {
    log: write,
    trace: (message, meta) => write("TRACE", message, meta),
    debug: (message, meta) => write("DEBUG", message, meta),
    info: (message, meta) => write("INFO", message, meta),
    warn: (message, meta) => write("WARN", message, meta),
    error: (message, meta) => write("ERROR", message, meta),
  };
}
