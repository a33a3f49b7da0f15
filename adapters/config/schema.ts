/**
 * The one configuration schema: every area's variables joined into one object (envSchema), then
 * reshaped into the nested Config the code uses (configSchema). Config is inferred from it, so a
 * variable, its parsing and its place in Config are written once.
 */
import type { z } from "zod";
import { apiEnv, apiSection } from "./api-env.ts";
import { databaseEnv, databaseSection } from "./database-env.ts";
import { observabilityEnv, observabilitySection } from "./observability-env.ts";
import { openaiEnv, openaiSection } from "./openai-env.ts";
import { type SchedulerTypeName, schedulerEnv, schedulerSection } from "./scheduler-env.ts";
import { sourcesEnv, sourcesSection } from "./sources-env.ts";
import { temporalEnv, temporalSection, temporalTlsProblems } from "./temporal-env.ts";

/**
 * Every variable, area by area. Problems are reported in this order, so the areas run from the
 * scheduler and its pipeline out to the services and the process around them.
 */
export const envSchema = schedulerEnv
  .extend(sourcesEnv.shape)
  .extend(openaiEnv.shape)
  .extend(temporalEnv.shape)
  .extend(databaseEnv.shape)
  .extend(apiEnv.shape)
  .extend(observabilityEnv.shape);

export type Env = z.output<typeof envSchema>;

/** Every environment variable the platform reads. */
export const ENV_VARS = Object.keys(envSchema.shape) as (keyof Env)[];

/**
 * The environment, validated and nested. The cross-variable checks run only once every variable
 * parsed on its own (a bad certificate file is reported alone, not also as a missing key).
 */
export const configSchema = envSchema
  .superRefine(temporalTlsProblems, { when: (payload) => payload.issues.length === 0 })
  .transform((e) => ({
    ...schedulerSection(e),
    ...sourcesSection(e),
    ...openaiSection(e),
    ...temporalSection(e),
    ...databaseSection(e),
    ...apiSection(e),
    ...observabilitySection(e),
  }));

export type Config = z.output<typeof configSchema>;
export type SchedulerTypeSwitches = Config["scheduler"]["types"][SchedulerTypeName];
export type TemporalTlsSettings = NonNullable<Config["temporal"]["tls"]>;
