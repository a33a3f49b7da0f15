/**
 * CLI for the OpenAI stand-in: `tsx openai-stand-in/main.ts --port 4010`.
 * Runs until SIGINT/SIGTERM and prints the base URL to use as OPENAI_BASE_URL.
 *
 * Flags (environment fallback in brackets):
 *   --port <n>              [OPENAI_STAND_IN_PORT]       default 4010 (0 = any free port)
 *   --host <addr>           [OPENAI_STAND_IN_HOST]       loopback only, default 127.0.0.1
 *   --api-key <key>         [OPENAI_STAND_IN_API_KEY]    require this bearer token
 *   --latency-ms <n>        [OPENAI_STAND_IN_LATENCY_MS] delay before every response
 *   --rate-429 <0..1>       [OPENAI_STAND_IN_RATE_429]
 *   --rate-500 <0..1>       [OPENAI_STAND_IN_RATE_500]
 *   --timeout-rate <0..1>   [OPENAI_STAND_IN_TIMEOUT_RATE]
 *   --retry-after <s>       [OPENAI_STAND_IN_RETRY_AFTER]
 *   --seed <n>              [OPENAI_STAND_IN_SEED]
 *   --batch-ms <v,p,f>      [OPENAI_STAND_IN_BATCH_MS]   validating,in_progress,finalizing
 */

import { parseArgs } from "node:util";
import { type FailureInjection, type StandInBehaviour, startOpenAIStandIn } from "./server.ts";

const FLAGS = {
  port: "OPENAI_STAND_IN_PORT",
  host: "OPENAI_STAND_IN_HOST",
  "api-key": "OPENAI_STAND_IN_API_KEY",
  "latency-ms": "OPENAI_STAND_IN_LATENCY_MS",
  "rate-429": "OPENAI_STAND_IN_RATE_429",
  "rate-500": "OPENAI_STAND_IN_RATE_500",
  "timeout-rate": "OPENAI_STAND_IN_TIMEOUT_RATE",
  "retry-after": "OPENAI_STAND_IN_RETRY_AFTER",
  seed: "OPENAI_STAND_IN_SEED",
  "batch-ms": "OPENAI_STAND_IN_BATCH_MS",
} as const;

type Flag = keyof typeof FLAGS;

function readSettings(argv: string[], env: NodeJS.ProcessEnv): (flag: Flag) => string | undefined {
  const options = Object.fromEntries(
    Object.keys(FLAGS).map((flag) => [flag, { type: "string" as const }]),
  );
  const { values } = parseArgs({ args: argv, options, strict: true });
  return (flag) => {
    const value = values[flag];
    return typeof value === "string" ? value : env[FLAGS[flag]];
  };
}

function number(setting: (flag: Flag) => string | undefined, flag: Flag): number | undefined {
  const raw = setting(flag);
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`--${flag} must be a number, got "${raw}"`);
  return value;
}

function failures(setting: (flag: Flag) => string | undefined): FailureInjection | undefined {
  const injection: FailureInjection = {
    rate429: number(setting, "rate-429"),
    rate500: number(setting, "rate-500"),
    timeoutRate: number(setting, "timeout-rate"),
    retryAfterSeconds: number(setting, "retry-after"),
    seed: number(setting, "seed"),
  };
  const active = [injection.rate429, injection.rate500, injection.timeoutRate].some(
    (rate) => (rate ?? 0) > 0,
  );
  return active ? injection : undefined;
}

function batchTimings(raw: string | undefined): StandInBehaviour["batch"] {
  if (raw === undefined || raw === "") return undefined;
  const [validatingMs, inProgressMs, finalizingMs] = raw.split(",").map(Number);
  if ([validatingMs, inProgressMs, finalizingMs].some((value) => !Number.isFinite(value))) {
    throw new Error(`--batch-ms must be three numbers like 200,500,200, got "${raw}"`);
  }
  return { validatingMs, inProgressMs, finalizingMs };
}

async function main(): Promise<void> {
  const setting = readSettings(process.argv.slice(2), process.env);
  const standIn = await startOpenAIStandIn({
    port: number(setting, "port") ?? 4010,
    host: setting("host") ?? "127.0.0.1",
    apiKey: setting("api-key"),
    behaviour: {
      latencyMs: number(setting, "latency-ms") ?? 0,
      failures: failures(setting),
      batch: batchTimings(setting("batch-ms")),
    },
  });
  console.log(`OpenAI stand-in listening on ${standIn.url}`);
  console.log(`Use OPENAI_BASE_URL=${standIn.url}`);

  const stop = async (signal: string) => {
    console.log(`${signal} received, stopping the OpenAI stand-in`);
    await standIn.close();
    process.exit(0);
  };
  process.once("SIGINT", () => void stop("SIGINT"));
  process.once("SIGTERM", () => void stop("SIGTERM"));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
