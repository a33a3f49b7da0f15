/**
 * Turns the environment into a Config or stops startup: every bad variable becomes one line
 * `NAME: what was expected, got "value"` in a ConfigError, which process-lifecycle.ts prints
 * without a stack trace.
 */
import { type Config, configSchema } from "./schema.ts";

/** Thrown when the environment holds a value the platform cannot run with. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Reads and validates every documented variable; throws ConfigError naming each bad one. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`),
    );
  }
  return parsed.data;
}

/** For processes that cannot run without a database. */
export function requireDatabaseUrl(config: Config): string {
  if (!config.databaseUrl) {
    throw new ConfigError([
      "DATABASE_URL: required for this process (postgresql://user:password@host:5432/db)",
    ]);
  }
  return config.databaseUrl;
}
