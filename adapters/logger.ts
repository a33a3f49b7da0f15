import { type DestinationStream, pino } from "pino";

/**
 * Structured JSON logs. Anything that could carry a company's CSV credentials is redacted by
 * path so a careless `log.info({ company })` cannot leak them.
 */
export function createLogger(
  level: string = process.env.LOG_LEVEL ?? "info",
  name = "livedash",
  /** Where the JSON lines go (default: stdout). */
  destination?: DestinationStream,
) {
  const options = {
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
  };
  return destination ? pino(options, destination) : pino(options);
}

export type Logger = ReturnType<typeof createLogger>;
