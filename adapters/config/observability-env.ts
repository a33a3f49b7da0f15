/**
 * The observability variables: log level, how long a metrics scrape reuses its reads, and where
 * traces go (OTEL_*). One area of the configuration schema (schema.ts joins them).
 */
import { z } from "zod";
import { int, oneOf, optionalText, optionalUrl } from "./env-values.ts";

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

export const observabilityEnv = z.object({
  LOG_LEVEL: oneOf(LOG_LEVELS, "info"),
  METRICS_CACHE_MS: int(10_000, 0, 300_000),
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalUrl(["http:", "https:"]),
  OTEL_SERVICE_NAME: optionalText.transform((name) => name ?? "livedash-worker"),
});

/** The `logLevel`, `metrics` and `tracing` parts of Config. */
export function observabilitySection(e: z.output<typeof observabilityEnv>) {
  return {
    logLevel: e.LOG_LEVEL,
    metrics: {
      /** A scrape reuses the last read of Temporal and the database for this long (0: never). */
      cacheMs: e.METRICS_CACHE_MS,
    },
    // Unset endpoint: no tracer provider, no exporter (adapters/tracing.ts).
    tracing: {
      /** OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT); spans go to `<it>/v1/traces`. */
      otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT,
      /** `service.name` of the spans this process exports (OTEL_SERVICE_NAME). */
      serviceName: e.OTEL_SERVICE_NAME,
    },
  };
}
