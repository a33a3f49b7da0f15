/**
 * The platform's configuration, read from the environment: the one import the rest of the code
 * uses. The schema lives in config/, one module per area (scheduler, sources, OpenAI, Temporal,
 * database, API, observability); docs/configuration.md documents every variable.
 */
export { cronProblem, redact } from "./config/env-values.ts";
export { ConfigError, loadConfig, requireDatabaseUrl } from "./config/load-config.ts";
export { SCHEDULER_TYPE_ENV, type SchedulerTypeName } from "./config/scheduler-env.ts";
export {
  type Config,
  configSchema,
  ENV_VARS,
  type Env,
  envSchema,
  type SchedulerTypeSwitches,
  type TemporalTlsSettings,
} from "./config/schema.ts";
