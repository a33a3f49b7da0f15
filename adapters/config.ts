import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { CronExpressionParser } from "cron-parser";
import { z } from "zod";
import { type NetworkRange, parseNetworkRange } from "../domain/address-policy.ts";
import type { HostRule } from "./http-source.ts";

/** Thrown when the environment holds a value the platform cannot run with. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

const booleanWords: Record<string, boolean> = {
  true: true,
  "1": true,
  yes: true,
  on: true,
  false: false,
  "0": false,
  no: false,
  off: false,
};

const bool = (fallback: boolean) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === "") return fallback;
      const parsed = booleanWords[value.trim().toLowerCase()];
      if (parsed === undefined) {
        ctx.addIssue({ code: "custom", message: `expected true or false, got "${value}"` });
        return z.NEVER;
      }
      return parsed;
    });

const int = (fallback: number, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === "") return fallback;
      const trimmed = value.trim();
      const parsed = Number(trimmed);
      if (
        !/^-?\d+$/.test(trimmed) ||
        !Number.isSafeInteger(parsed) ||
        parsed < min ||
        parsed > max
      ) {
        ctx.addIssue({
          code: "custom",
          message: `expected an integer from ${min} to ${max}, got "${value}"`,
        });
        return z.NEVER;
      }
      return parsed;
    });

/**
 * A five-field cron expression (minute hour day-of-month month day-of-week), the form the
 * documented defaults use and Temporal schedules accept.
 */
const cron = (fallback: string) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      const expression = value === undefined || value.trim() === "" ? fallback : value.trim();
      const problem = cronProblem(expression);
      if (problem) {
        ctx.addIssue({ code: "custom", message: `${problem}, got "${value}"` });
        return z.NEVER;
      }
      return expression;
    });

export function cronProblem(expression: string): string | undefined {
  const fields = expression.split(/\s+/);
  if (fields.length !== 5) {
    return `expected a cron expression with 5 fields (minute hour day month weekday)`;
  }
  try {
    CronExpressionParser.parse(expression, { strict: false });
    return undefined;
  } catch (error) {
    return `expected a valid cron expression (${(error as Error).message})`;
  }
}

const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === "" ? undefined : value.trim()));

const optionalUrl = (protocols: string[]) =>
  optionalText.superRefine((value, ctx) => {
    if (value === undefined) return;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: "custom", message: `expected a URL, got "${redact(value)}"` });
      return;
    }
    if (!protocols.includes(url.protocol)) {
      ctx.addIssue({
        code: "custom",
        message: `expected a ${protocols.join(" or ")} URL, got "${redact(value)}"`,
      });
    }
  });

const timeZone = (fallback: string) =>
  optionalText.transform((value, ctx) => {
    const zone = value ?? fallback;
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: zone });
      return zone;
    } catch {
      ctx.addIssue({ code: "custom", message: `expected an IANA time zone, got "${value}"` });
      return z.NEVER;
    }
  });

/** `region:<name>` is the only documented filter. */
const companiesFilter = optionalText.transform((value, ctx) => {
  if (value === undefined) return undefined;
  const match = /^region:([A-Za-z0-9_-]+)$/.exec(value);
  if (!match?.[1]) {
    ctx.addIssue({ code: "custom", message: `expected "region:<name>", got "${value}"` });
    return z.NEVER;
  }
  return { region: match[1] };
});

const region = optionalText.superRefine((value, ctx) => {
  if (value !== undefined && !/^[a-z0-9][a-z0-9-]{0,30}$/.test(value)) {
    ctx.addIssue({
      code: "custom",
      message: `expected lowercase letters, digits and dashes (used in schedule ids), got "${value}"`,
    });
  }
});

const temporalAddress = optionalText.superRefine((value, ctx) => {
  if (value !== undefined && !/^[^\s/:]+:\d{1,5}$/.test(value)) {
    ctx.addIssue({ code: "custom", message: `expected host:port, got "${value}"` });
  }
});

const logLevel = optionalText.transform((value, ctx) => {
  const level = value ?? "info";
  const levels = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];
  if (!levels.includes(level)) {
    ctx.addIssue({
      code: "custom",
      message: `expected one of ${levels.join(", ")}, got "${value}"`,
    });
    return z.NEVER;
  }
  return level as "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";
});

const HOST_ENTRY = /^(\*\.)?([a-z0-9_-]+(?:\.[a-z0-9_-]+)*|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/;

/**
 * FETCH_ALLOWED_HOSTS: `host`, `host:port` or `*.domain[:port]`, comma-separated. Unset or empty
 * allows any host; a value that names no host at all (",") is an error, not "any".
 */
const allowedHosts = optionalText.transform((value, ctx) => {
  if (value === undefined) return [];
  const entries = value
    .split(",")
    .map((entry) => entry.trim().toLowerCase())
    .filter(Boolean);
  const rules: HostRule[] = [];
  const bad: string[] = [];
  for (const entry of entries) {
    const rule = hostRule(entry);
    if (rule) rules.push(rule);
    else bad.push(`"${entry}"`);
  }
  if (bad.length > 0 || rules.length === 0) {
    ctx.addIssue({
      code: "custom",
      message: `expected comma-separated host names (example.com, example.com:8443 or *.example.com), got ${bad.length > 0 ? bad.join(", ") : `"${value}"`}`,
    });
    return z.NEVER;
  }
  return rules;
});

function hostRule(entry: string): HostRule | undefined {
  const match = HOST_ENTRY.exec(entry);
  const host = match?.[2];
  if (!match || !host) return undefined;
  const subdomains = match[1] !== undefined;
  // A wildcard over an IP address means nothing: refuse it rather than guess.
  if (subdomains && (host.startsWith("[") || /^[\d.]+$/.test(host))) return undefined;
  const port = match[3] === undefined ? undefined : Number(match[3]);
  if (port !== undefined && (port < 1 || port > 65_535)) return undefined;
  try {
    // Normalised as fetch will see it (IPv4 forms, IPv6 compression), so matching is exact.
    return { host: new URL(`http://${host}`).hostname, subdomains, port };
  } catch {
    return undefined;
  }
}

/**
 * FETCH_ALLOW_PRIVATE_NETWORKS: false (default), true (any internal address), or the internal
 * ranges fetches may reach, comma-separated (`10.1.0.0/16,127.0.0.1`).
 */
const privateNetworks = optionalText.transform((value, ctx): boolean | NetworkRange[] => {
  if (value === undefined) return false;
  const word = booleanWords[value.toLowerCase()];
  if (word !== undefined) return word;
  const entries = value
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean);
  const ranges = entries.map(parseNetworkRange);
  const bad = entries.filter((_, i) => ranges[i] === undefined);
  if (bad.length > 0 || entries.length === 0) {
    ctx.addIssue({
      code: "custom",
      message: `expected true, false or comma-separated address ranges (10.1.0.0/16, ::1), got ${bad.map((b) => `"${b}"`).join(", ") || `"${value}"`}`,
    });
    return z.NEVER;
  }
  return ranges as NetworkRange[];
});

/** A readable file path (TLS certificates and keys), checked at startup. */
const filePath = optionalText.superRefine((value, ctx) => {
  if (value !== undefined && !existsSync(value)) {
    ctx.addIssue({ code: "custom", message: `no such file "${value}"` });
  }
});

/** PEM text given inline (certificates, keys); never echoed back in a message. */
const pemData = optionalText.superRefine((value, ctx) => {
  if (value !== undefined && !value.includes("-----BEGIN ")) {
    ctx.addIssue({ code: "custom", message: "expected PEM text (-----BEGIN ...)" });
  }
});

/** The scheduler types' per-type switches (the seed's enabled / autoStart / critical). */
export const SCHEDULER_TYPE_ENV = {
  "csv-import": "CSV_IMPORT",
  "import-processing": "IMPORT_PROCESSING",
  "session-processing": "SESSION_PROCESSING",
  "batch-processing": "BATCH_PROCESSING",
} as const;
export type SchedulerTypeName = keyof typeof SCHEDULER_TYPE_ENV;
export interface SchedulerTypeSwitches {
  /** false: the type's schedules are removed and never created (its worker still drains runs). */
  enabled: boolean;
  /** false: a schedule created from configuration starts paused, with a note saying why. */
  autoStart: boolean;
  /** false: this type's ERROR makes health degraded (200), not unhealthy (503). */
  critical: boolean;
}

const MB = 1024 * 1024;

const envSchema = z.object({
  SCHEDULER_ENABLED: bool(true),
  SCHEDULER_AUTO_RESTART: bool(true),
  SCHEDULER_INSTANCE_ID: optionalText,
  SCHEDULER_TIME_ZONE: timeZone("UTC"),
  SCHEDULER_CATCHUP_WINDOW_MS: int(60_000, 10_000, 7 * 24 * 3_600_000),
  SCHEDULER_ERROR_THRESHOLD: int(3, 1, 100),
  WORKER_SHUTDOWN_GRACE_MS: int(30_000, 0, 3_600_000),
  WORKER_MAX_CONCURRENT_ACTIVITIES: int(20, 1, 1_000),
  RUN_MAX_IN_FLIGHT: int(200, 1, 1_000),
  RUN_HISTORY_EVENT_BUDGET: int(9_000, 300, 40_000),
  SCHEDULER_RUN_DEADLINE_MS: int(0, 0, 24 * 3_600_000),
  BACKLOG_LAG_OBJECTIVE_SECONDS: int(3_600, 0, 30 * 24 * 3_600),
  ACTIVITY_HEARTBEAT_TIMEOUT_MS: int(30_000, 1_000, 3_600_000),
  WORKER_HEALTH_PORT: int(9090, 0, 65_535),
  WORKER_METRICS_PORT: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === "") return undefined;
      const port = Number(value);
      if (!Number.isInteger(port) || port < 1 || port > 65_535) {
        ctx.addIssue({
          code: "custom",
          message: `expected a port from 1 to 65535, got "${value}"`,
        });
        return z.NEVER;
      }
      return port;
    }),
  SCHEDULER_DEADMAN_INTERVALS: int(3, 1, 1000),
  SCHEDULER_WORKER_STALE_MS: int(5 * 60_000, 10_000, 24 * 3_600_000),
  SCHEDULER_RECONCILE_INTERVAL_MS: int(5 * 60_000, 0, 24 * 3_600_000),
  SCHEDULER_PARTIAL_THRESHOLD: int(3, 1, 100),
  SCHEDULER_FAILED_COMPANIES_PERCENT: int(50, 1, 100),
  /** Run and action history older than this is pruned daily; 0 keeps it forever. */
  SCHEDULER_HISTORY_RETENTION_DAYS: int(30, 0, 36_500),
  SCHEDULER_HISTORY_RETENTION_INTERVAL: cron("17 3 * * *"),
  SCHEDULER_HISTORY_RETENTION_BATCH_SIZE: int(1_000, 1, 100_000),
  CSV_IMPORT_ENABLED: bool(true),
  CSV_IMPORT_AUTO_START: bool(true),
  CSV_IMPORT_CRITICAL: bool(true),
  IMPORT_PROCESSING_ENABLED: bool(true),
  IMPORT_PROCESSING_AUTO_START: bool(true),
  IMPORT_PROCESSING_CRITICAL: bool(true),
  SESSION_PROCESSING_ENABLED: bool(true),
  SESSION_PROCESSING_AUTO_START: bool(true),
  SESSION_PROCESSING_CRITICAL: bool(true),
  BATCH_PROCESSING_ENABLED: bool(true),
  BATCH_PROCESSING_AUTO_START: bool(true),
  BATCH_PROCESSING_CRITICAL: bool(true),
  ADMIN_API_TOKEN: optionalText.superRefine((value, ctx) => {
    if (value !== undefined && value.length < 16) {
      ctx.addIssue({ code: "custom", message: "expected at least 16 characters" });
    }
  }),
  ADMIN_API_INSECURE: bool(false),

  CSV_IMPORT_INTERVAL: cron("*/10 * * * *"),
  CSV_IMPORT_BATCH_SIZE: int(10, 1, 1000),
  CSV_IMPORT_MAX_CONCURRENT: int(5, 1, 100),
  CSV_IMPORT_TIMEOUT: int(300_000, 1_000, 24 * 3_600_000),
  CSV_IMPORT_MAX_BYTES: int(200 * MB, 1024, 16 * 1024 * MB),
  IMPORT_PROCESSING_INTERVAL: cron("*/2 * * * *"),
  IMPORT_PROCESSING_TIMEOUT: int(120_000, 1_000, 24 * 3_600_000),
  IMPORT_PROCESSING_BATCH_SIZE: int(50, 1, 10_000),
  IMPORT_PROCESSING_MAX_CONCURRENT: int(20, 1, 1_000),
  IMPORT_TIME_ZONE: timeZone("UTC"),
  TRANSCRIPT_FETCH_TIMEOUT: int(30_000, 100, 3_600_000),
  TRANSCRIPT_MAX_BYTES: int(5 * MB, 1024, 1024 * MB),
  TRANSCRIPT_MAX_MESSAGES: int(5_000, 1, 10_000_000),
  IMPORT_MAX_ATTEMPTS: int(10, 1, 1_000),
  FETCH_ALLOWED_HOSTS: allowedHosts,
  FETCH_MAX_PER_HOST: int(4, 1, 1_000),
  FETCH_HOST_WAIT_MS: int(10_000, 0, 600_000),
  FETCH_ALLOW_PRIVATE_NETWORKS: privateNetworks,
  FETCH_MIN_BYTES_PER_SECOND: int(1024, 0, 1024 * MB),
  SESSION_PROCESSING_INTERVAL: cron("*/5 * * * *"),
  SESSION_PROCESSING_BATCH_SIZE: int(50, 1, 10_000),
  BATCH_PROCESSING_INTERVAL: cron("*/5 * * * *"),
  BATCH_PROCESSING_CHECK_INTERVAL: cron("*/2 * * * *"),
  BATCH_MIN_REQUESTS: int(10, 1, 50_000),
  BATCH_MAX_WAIT_MS: int(30 * 60_000, 0, 7 * 24 * 3_600_000),
  BATCH_MAX_REQUESTS: int(1000, 1, 50_000),
  ANALYSIS_MODE: z
    .string()
    .optional()
    .transform((value, ctx) => {
      const mode = value?.trim() || "batch";
      if (mode !== "batch" && mode !== "direct") {
        ctx.addIssue({ code: "custom", message: `expected batch or direct, got "${value}"` });
        return z.NEVER;
      }
      return mode;
    }),
  ANALYSIS_MAX_CONCURRENT: int(20, 1, 1_000),
  OPENAI_REQUESTS_PER_SECOND: int(0, 0, 100_000),
  AI_MAX_RETRIES: int(3, 0, 20),
  OPENAI_MODEL: optionalText,
  USD_TO_EUR_RATE: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === "") return 0.85;
      const rate = Number(value);
      if (!Number.isFinite(rate) || rate <= 0) {
        ctx.addIssue({ code: "custom", message: `expected a positive number, got "${value}"` });
        return z.NEVER;
      }
      return rate;
    }),

  REGION: region,
  API_REGIONS: optionalText.transform((value, ctx) => {
    if (value === undefined) return undefined;
    const regions = value
      .split(",")
      .map((r) => r.trim())
      .filter(Boolean);
    const bad = regions.find((r) => !/^[a-z0-9][a-z0-9-]{0,30}$/.test(r));
    if (bad !== undefined || regions.length === 0) {
      ctx.addIssue({
        code: "custom",
        message: `expected a comma-separated list of regions, got "${value}"`,
      });
      return z.NEVER;
    }
    return [...new Set(regions)];
  }),
  CSV_COMPANIES_FILTER: companiesFilter,

  TEMPORAL_ADDRESS: temporalAddress,
  TEMPORAL_NAMESPACE: optionalText,
  TEMPORAL_UI_URL: optionalUrl(["http:", "https:"]),
  TEMPORAL_API_KEY: optionalText,
  TEMPORAL_TLS: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === "") return undefined;
      const parsed = booleanWords[value.trim().toLowerCase()];
      if (parsed === undefined) {
        ctx.addIssue({ code: "custom", message: `expected true or false, got "${value}"` });
        return z.NEVER;
      }
      return parsed;
    }),
  TEMPORAL_TLS_CLIENT_CERT_PATH: filePath,
  TEMPORAL_TLS_CLIENT_CERT_DATA: pemData,
  TEMPORAL_TLS_CLIENT_KEY_PATH: filePath,
  TEMPORAL_TLS_CLIENT_KEY_DATA: pemData,
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: filePath,
  TEMPORAL_TLS_SERVER_CA_CERT_DATA: pemData,
  TEMPORAL_TLS_SERVER_NAME: optionalText,
  DATABASE_URL: optionalUrl(["postgres:", "postgresql:"]),
  DATABASE_POOL_SIZE: int(10, 1, 500),
  OPENAI_API_KEY: optionalText,
  OPENAI_BASE_URL: optionalUrl(["http:", "https:"]),
  PORT: int(3000, 0, 65_535),
  LOG_LEVEL: logLevel,

  METRICS_CACHE_MS: int(10_000, 0, 300_000),
  ALERT_WEBHOOK_URL: optionalUrl(["http:", "https:"]),
  ALERT_EVALUATION_INTERVAL_MS: int(30_000, 200, 3_600_000),
  ALERT_WEBHOOK_MAX_ATTEMPTS: int(8, 1, 100),
  API_PUBLIC_URL: optionalUrl(["http:", "https:"]),
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalUrl(["http:", "https:"]),
  OTEL_SERVICE_NAME: optionalText,
});

/** Settings that are only valid together (TLS certificate and key, one source of each). */
function crossFieldProblems(e: z.infer<typeof envSchema>): string[] {
  const problems: string[] = [];
  for (const [what, path, data] of [
    ["CLIENT_CERT", e.TEMPORAL_TLS_CLIENT_CERT_PATH, e.TEMPORAL_TLS_CLIENT_CERT_DATA],
    ["CLIENT_KEY", e.TEMPORAL_TLS_CLIENT_KEY_PATH, e.TEMPORAL_TLS_CLIENT_KEY_DATA],
    ["SERVER_CA_CERT", e.TEMPORAL_TLS_SERVER_CA_CERT_PATH, e.TEMPORAL_TLS_SERVER_CA_CERT_DATA],
  ] as const) {
    if (path !== undefined && data !== undefined) {
      problems.push(
        `TEMPORAL_TLS_${what}_PATH: set either TEMPORAL_TLS_${what}_PATH or TEMPORAL_TLS_${what}_DATA, not both`,
      );
    }
  }
  const cert = e.TEMPORAL_TLS_CLIENT_CERT_PATH ?? e.TEMPORAL_TLS_CLIENT_CERT_DATA;
  const key = e.TEMPORAL_TLS_CLIENT_KEY_PATH ?? e.TEMPORAL_TLS_CLIENT_KEY_DATA;
  if ((cert === undefined) !== (key === undefined)) {
    problems.push(
      "TEMPORAL_TLS_CLIENT_KEY_PATH: a client certificate needs its key and a key its certificate (TEMPORAL_TLS_CLIENT_CERT_* and TEMPORAL_TLS_CLIENT_KEY_*)",
    );
  }
  return problems;
}

export type Env = z.infer<typeof envSchema>;

/** Every environment variable the platform reads. */
export const ENV_VARS = Object.keys(envSchema.shape) as (keyof Env)[];

export interface Config {
  scheduler: {
    enabled: boolean;
    autoRestart: boolean;
    instanceId: string;
    timeZone: string;
    catchupWindowMs: number;
    /** Consecutive failed runs after which a scheduler reports ERROR. */
    errorThreshold: number;
    shutdownGraceMs: number;
    /** Activity slots of each worker (task queue) in a process. */
    maxConcurrentActivities: number;
    /** Activities one scheduled run keeps in flight at most; workers' slots set the pace. */
    runWindow: number;
    /** History events after which a run's execution continues as new. */
    runHistoryBudget: number;
    /** No new work after this long in a run (0: 90% of the schedule's interval). */
    runDeadlineMs: number;
    /** A stage whose oldest waiting item is older than this is ERROR (0: no objective). */
    backlogLagObjectiveMs: number;
    /** A scheduler whose last success is older than this many intervals is ERROR. */
    deadmanIntervals: number;
    /** A task queue without a polling worker for this long makes its schedulers ERROR. */
    workerStaleMs: number;
    /** A long activity silent this long is presumed dead (its worker died) and retried elsewhere. */
    heartbeatTimeoutMs: number;
    /** Worker processes answer /livez and /readyz here (0: no health server). */
    healthPort: number;
    /** Worker processes expose the Temporal SDK's Prometheus metrics here (unset: off). */
    metricsPort: number | undefined;
    /** Workers reconcile their schedules (and remove orphans) this often; 0: at start only. */
    reconcileIntervalMs: number;
    /** Consecutive PARTIAL runs after which a scheduler reports ERROR. */
    partialThreshold: number;
    /** A run in which more than this percentage of companies failed makes a scheduler ERROR. */
    failedCompaniesPercent: number;
    /** Per scheduler type: enabled, autoStart, critical. */
    types: Record<SchedulerTypeName, SchedulerTypeSwitches>;
  };
  admin: {
    /** Bearer token of the admin routes; undefined only in insecure dev mode. */
    token: string | undefined;
    insecure: boolean;
  };
  csvImport: {
    interval: string;
    batchSize: number;
    maxConcurrent: number;
    timeoutMs: number;
    maxBytes: number;
  };
  importProcessing: {
    interval: string;
    timeoutMs: number;
    /** Imports claimed per page (a run drains every page). */
    batchSize: number;
    /** Activity slots of each import-processing worker replica. */
    maxConcurrent: number;
    /** Zone of the companies' wall-clock timestamps (CSV dates, transcript lines). */
    timeZone: string;
    transcriptTimeoutMs: number;
    transcriptMaxBytes: number;
    /** A transcript with more messages fails its stage with the reason (none are stored). */
    transcriptMaxMessages: number;
    /** processImport attempts (Temporal's retries included) before an import is FAILED. */
    maxAttempts: number;
  };
  /** Hosts CSV and transcript fetches may reach (FETCH_ALLOWED_HOSTS); empty: any host. */
  fetchAllowedHosts: HostRule[];
  /** Fetches at once to one source host, across every replica (a global lease). */
  fetchMaxPerHost: number;
  /** How long a fetch waits for its host's slot before the run retries it later. */
  fetchHostWaitMs: number;
  /** FETCH_ALLOW_PRIVATE_NETWORKS: internal addresses fetches may reach (true: any). */
  fetchAllowPrivateNetworks: boolean | NetworkRange[];
  /** FETCH_MIN_BYTES_PER_SECOND: a body slower than this over 10 s is aborted (0: no floor). */
  fetchMinBytesPerSecond: number;
  sessionProcessing: { interval: string; batchSize: number };
  batchProcessing: {
    interval: string;
    checkInterval: string;
    /** A company's batch is created once this many requests wait... */
    minRequests: number;
    /** ...or once its oldest request waited this long. */
    maxWaitMs: number;
    maxRequests: number;
  };
  analysis: {
    mode: "batch" | "direct";
    /** Direct mode: chat completions at once per session-processing worker replica. */
    maxConcurrent: number;
    /** Direct mode: model calls per second across every replica (0: no limit). */
    requestsPerSecond: number;
    /** Times a request goes back to the queue after its batch failed, expired or was cancelled. */
    maxRetries: number;
    /** Model when a company has no default model of its own. */
    fallbackModel: string;
    usdToEur: number;
  };
  region: string | undefined;
  /** Regions whose schedulers the API reports (default: its own REGION). */
  apiRegions: string[] | undefined;
  companiesFilter: { region: string } | undefined;
  temporal: {
    /** Undefined when not configured: dev tooling then starts a local dev server. */
    address: string | undefined;
    namespace: string;
    uiUrl: string;
    /** Temporal Cloud API key (sent as a bearer token; implies TLS). */
    apiKey: string | undefined;
    /** TEMPORAL_TLS_* as @temporalio/envconfig reads them; undefined: plain TCP. */
    tls: TemporalTlsSettings | undefined;
  };
  databaseUrl: string | undefined;
  /** Connections per process; writes wait up to 10 s for one before failing. */
  databasePoolSize: number;
  openai: { apiKey: string | undefined; baseUrl: string | undefined };
  port: number;
  logLevel: Env["LOG_LEVEL"];
  metrics: {
    /** A scrape reuses the last read of Temporal and the database for this long (0: never). */
    cacheMs: number;
  };
  /** The history-retention maintenance schedule (lib/maintenance.ts). */
  historyRetention: {
    /** Finished runs, audit entries and settled notifications older than this go; 0: never. */
    days: number;
    interval: string;
    /** Rows deleted per statement: bounded work and locks, whatever the table's size. */
    batchSize: number;
  };
  alerts: {
    /** Scheduler ERROR and recovery messages go here (unset: no notifications). */
    webhookUrl: string | undefined;
    /** How often the API evaluates scheduler states and retries pending deliveries. */
    evaluationIntervalMs: number;
    /** Deliveries of one message before it is given up (backoff doubles from the interval). */
    maxAttempts: number;
    /** Base of the links in messages: where operators reach this API and its dashboard. */
    publicUrl: string;
  };
  tracing: {
    /** OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT); spans go to `<it>/v1/traces`. */
    otlpEndpoint: string | undefined;
    /** `service.name` of the spans this process exports (OTEL_SERVICE_NAME). */
    serviceName: string;
  };
}

export interface TemporalTlsSettings {
  clientCertPath?: string | undefined;
  clientCertData?: string | undefined;
  clientKeyPath?: string | undefined;
  clientKeyData?: string | undefined;
  serverCaCertPath?: string | undefined;
  serverCaCertData?: string | undefined;
  serverName?: string | undefined;
}

/** TLS is on when asked for, when any TLS file or name is given, or with an API key. */
function temporalTls(e: Env): TemporalTlsSettings | undefined {
  const settings: TemporalTlsSettings = {
    clientCertPath: e.TEMPORAL_TLS_CLIENT_CERT_PATH,
    clientCertData: e.TEMPORAL_TLS_CLIENT_CERT_DATA,
    clientKeyPath: e.TEMPORAL_TLS_CLIENT_KEY_PATH,
    clientKeyData: e.TEMPORAL_TLS_CLIENT_KEY_DATA,
    serverCaCertPath: e.TEMPORAL_TLS_SERVER_CA_CERT_PATH,
    serverCaCertData: e.TEMPORAL_TLS_SERVER_CA_CERT_DATA,
    serverName: e.TEMPORAL_TLS_SERVER_NAME,
  };
  if (e.TEMPORAL_TLS === false) return undefined;
  const anySet = Object.values(settings).some((v) => v !== undefined);
  return e.TEMPORAL_TLS || anySet || e.TEMPORAL_API_KEY !== undefined ? settings : undefined;
}

/** Reads and validates every documented variable; throws ConfigError naming each bad one. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join(".")}: ${issue.message}`,
    );
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  const crossField = crossFieldProblems(e);
  if (crossField.length > 0) throw new ConfigError(crossField);
  const switches = (prefix: (typeof SCHEDULER_TYPE_ENV)[SchedulerTypeName]) => ({
    enabled: e[`${prefix}_ENABLED`],
    autoStart: e[`${prefix}_AUTO_START`],
    critical: e[`${prefix}_CRITICAL`],
  });
  return {
    scheduler: {
      enabled: e.SCHEDULER_ENABLED,
      autoRestart: e.SCHEDULER_AUTO_RESTART,
      instanceId: e.SCHEDULER_INSTANCE_ID ?? `${hostname()}-${process.pid}`,
      timeZone: e.SCHEDULER_TIME_ZONE,
      catchupWindowMs: e.SCHEDULER_CATCHUP_WINDOW_MS,
      errorThreshold: e.SCHEDULER_ERROR_THRESHOLD,
      shutdownGraceMs: e.WORKER_SHUTDOWN_GRACE_MS,
      maxConcurrentActivities: e.WORKER_MAX_CONCURRENT_ACTIVITIES,
      runWindow: e.RUN_MAX_IN_FLIGHT,
      runHistoryBudget: e.RUN_HISTORY_EVENT_BUDGET,
      runDeadlineMs: e.SCHEDULER_RUN_DEADLINE_MS,
      backlogLagObjectiveMs: e.BACKLOG_LAG_OBJECTIVE_SECONDS * 1000,
      deadmanIntervals: e.SCHEDULER_DEADMAN_INTERVALS,
      workerStaleMs: e.SCHEDULER_WORKER_STALE_MS,
      heartbeatTimeoutMs: e.ACTIVITY_HEARTBEAT_TIMEOUT_MS,
      healthPort: e.WORKER_HEALTH_PORT,
      metricsPort: e.WORKER_METRICS_PORT,
      reconcileIntervalMs: e.SCHEDULER_RECONCILE_INTERVAL_MS,
      partialThreshold: e.SCHEDULER_PARTIAL_THRESHOLD,
      failedCompaniesPercent: e.SCHEDULER_FAILED_COMPANIES_PERCENT,
      types: {
        "csv-import": switches("CSV_IMPORT"),
        "import-processing": switches("IMPORT_PROCESSING"),
        "session-processing": switches("SESSION_PROCESSING"),
        "batch-processing": switches("BATCH_PROCESSING"),
      },
    },
    admin: { token: e.ADMIN_API_TOKEN, insecure: e.ADMIN_API_INSECURE },
    csvImport: {
      interval: e.CSV_IMPORT_INTERVAL,
      batchSize: e.CSV_IMPORT_BATCH_SIZE,
      maxConcurrent: e.CSV_IMPORT_MAX_CONCURRENT,
      timeoutMs: e.CSV_IMPORT_TIMEOUT,
      maxBytes: e.CSV_IMPORT_MAX_BYTES,
    },
    importProcessing: {
      interval: e.IMPORT_PROCESSING_INTERVAL,
      timeoutMs: e.IMPORT_PROCESSING_TIMEOUT,
      batchSize: e.IMPORT_PROCESSING_BATCH_SIZE,
      maxConcurrent: e.IMPORT_PROCESSING_MAX_CONCURRENT,
      timeZone: e.IMPORT_TIME_ZONE,
      transcriptTimeoutMs: e.TRANSCRIPT_FETCH_TIMEOUT,
      transcriptMaxBytes: e.TRANSCRIPT_MAX_BYTES,
      transcriptMaxMessages: e.TRANSCRIPT_MAX_MESSAGES,
      maxAttempts: e.IMPORT_MAX_ATTEMPTS,
    },
    fetchAllowedHosts: e.FETCH_ALLOWED_HOSTS,
    fetchMaxPerHost: e.FETCH_MAX_PER_HOST,
    fetchHostWaitMs: e.FETCH_HOST_WAIT_MS,
    fetchAllowPrivateNetworks: e.FETCH_ALLOW_PRIVATE_NETWORKS,
    fetchMinBytesPerSecond: e.FETCH_MIN_BYTES_PER_SECOND,
    sessionProcessing: {
      interval: e.SESSION_PROCESSING_INTERVAL,
      batchSize: e.SESSION_PROCESSING_BATCH_SIZE,
    },
    batchProcessing: {
      interval: e.BATCH_PROCESSING_INTERVAL,
      checkInterval: e.BATCH_PROCESSING_CHECK_INTERVAL,
      minRequests: e.BATCH_MIN_REQUESTS,
      maxWaitMs: e.BATCH_MAX_WAIT_MS,
      maxRequests: e.BATCH_MAX_REQUESTS,
    },
    analysis: {
      mode: e.ANALYSIS_MODE,
      maxConcurrent: e.ANALYSIS_MAX_CONCURRENT,
      requestsPerSecond: e.OPENAI_REQUESTS_PER_SECOND,
      maxRetries: e.AI_MAX_RETRIES,
      fallbackModel: e.OPENAI_MODEL ?? "gpt-4o-mini",
      usdToEur: e.USD_TO_EUR_RATE,
    },
    region: e.REGION,
    apiRegions: e.API_REGIONS,
    companiesFilter: e.CSV_COMPANIES_FILTER,
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE ?? "default",
      uiUrl: e.TEMPORAL_UI_URL ?? "http://localhost:8233",
      apiKey: e.TEMPORAL_API_KEY,
      tls: temporalTls(e),
    },
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    openai: { apiKey: e.OPENAI_API_KEY, baseUrl: e.OPENAI_BASE_URL },
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
    metrics: { cacheMs: e.METRICS_CACHE_MS },
    historyRetention: {
      days: e.SCHEDULER_HISTORY_RETENTION_DAYS,
      interval: e.SCHEDULER_HISTORY_RETENTION_INTERVAL,
      batchSize: e.SCHEDULER_HISTORY_RETENTION_BATCH_SIZE,
    },
    alerts: {
      webhookUrl: e.ALERT_WEBHOOK_URL,
      evaluationIntervalMs: e.ALERT_EVALUATION_INTERVAL_MS,
      maxAttempts: e.ALERT_WEBHOOK_MAX_ATTEMPTS,
      publicUrl: (e.API_PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ""),
    },
    // Unset endpoint: no tracer provider, no exporter (adapters/tracing.ts).
    tracing: {
      otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT,
      serviceName: e.OTEL_SERVICE_NAME ?? "livedash-worker",
    },
  };
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

/** Hides the password of a URL before it is shown in a message or log. */
export function redact(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = "***";
    return url.toString();
  } catch {
    return value.replace(/\/\/([^:/@]+):[^@/]+@/, "//$1:***@");
  }
}
