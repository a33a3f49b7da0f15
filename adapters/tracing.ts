import type { ClientInterceptors } from "@temporalio/client";
import type { OpenTelemetrySinks } from "@temporalio/interceptors-opentelemetry";
import type { InjectedSinks, WorkerOptions } from "@temporalio/worker";
import type { Config } from "./config.ts";
import type { Logger } from "./logger.ts";

/**
 * Traces over OTLP/HTTP (JSON) when OTEL_EXPORTER_OTLP_ENDPOINT is set; nothing at all when it
 * is not. One scheduled run is one trace: the workflow's `RunWorkflow` span (created inside the
 * workflow sandbox by @temporalio/interceptors-opentelemetry, and the root, because the server,
 * not a client of ours, starts scheduled runs) → `StartActivity` → `RunActivity` on whichever
 * worker ran it → the fetch, SQL and OpenAI spans made inside the activity.
 *
 * The OpenTelemetry SDK, its exporter and instrumentations (adapters/tracing-otlp.ts) are loaded only
 * when tracing is on: they cost an idle worker ~12 MB of RSS.
 */

/** What a worker and its client need to take part in tracing. */
export interface Tracing {
  enabled: boolean;
  /** Activity interceptors and the sink the workflow interceptors export their spans to. */
  workerOptions: Pick<WorkerOptions, "interceptors" | "sinks">;
  /** Interceptors for a Temporal client that starts workflows (undefined when off). */
  clientInterceptors: ClientInterceptors | undefined;
  /** Flushes the spans still buffered; the last user also shuts the provider down. */
  shutdown(): Promise<void>;
}

/** OTLP/HTTP signal path, appended to OTEL_EXPORTER_OTLP_ENDPOINT as the specification says. */
export function otlpTracesUrl(endpoint: string): string {
  const url = new URL(endpoint);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/v1/traces`;
  return url.toString();
}

/**
 * The workflow interceptors are always in the bundle (a prebuilt bundle cannot depend on this
 * process's environment), so the sink they export to must always exist (else the SDK logs an
 * error per workflow task); with tracing off it drops the spans here, before any provider or
 * exporter. Any other worker or replayer of the bundle passes these too.
 */
export const UNTRACED_SINKS: InjectedSinks<OpenTelemetrySinks> = {
  exporter: { export: { fn: () => undefined } },
};

export const OFF: Tracing = {
  enabled: false,
  workerOptions: { sinks: UNTRACED_SINKS },
  clientInterceptors: undefined,
  shutdown: async () => undefined,
};

/** Tracing for this process's workers, per OTEL_EXPORTER_OTLP_ENDPOINT. */
export async function startTracing(config: Config, log: Logger): Promise<Tracing> {
  const endpoint = config.tracing.otlpEndpoint;
  if (!endpoint) return OFF;
  const { startOtlpTracing } = await import("./tracing-otlp.ts");
  return startOtlpTracing(config, endpoint, log);
}
