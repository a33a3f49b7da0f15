import { pino } from "pino";

/**
 * Structured JSON logs. Anything that could carry a company's CSV credentials is redacted by
 * path so a careless `log.info({ company })` cannot leak them.
 */
export function createLogger(level: string = process.env.LOG_LEVEL ?? "info", name = "livedash") {
  return pino({
    name,
    level,
    redact: {
      paths: [
        "csvPassword",
        "*.csvPassword",
        "*.*.csvPassword",
        "csvUsername",
        "*.csvUsername",
        "password",
        "*.password",
        "authorization",
        "*.authorization",
        "*.headers.authorization",
        "apiKey",
        "*.apiKey",
      ],
      censor: "[redacted]",
    },
  });
}

export type Logger = ReturnType<typeof createLogger>;
