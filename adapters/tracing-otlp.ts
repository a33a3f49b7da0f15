import { format } from "node:util";
import { context, DiagLogLevel, diag, propagation, trace } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { Resource } from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  SamplingDecision,
} from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { PrismaInstrumentation } from "@prisma/instrumentation";
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  type OpenTelemetrySinks,
  OpenTelemetryWorkflowClientInterceptor,
} from "@temporalio/interceptors-opentelemetry";
import type { InjectedSinks } from "@temporalio/worker";
import type { Config } from "./config.ts";
import type { Logger } from "./logger.ts";
import { describeUrl, redactUrlCredentials } from "./source-url.ts";
import { otlpTracesUrl, type Tracing } from "./tracing.ts";

/**
 * The OpenTelemetry SDK side of tracing: the provider, the OTLP/HTTP exporter, Prisma's
 * instrumentation and Temporal's interceptors. Imported by adapters/tracing.ts only when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set.
 */

/**
 * Spans of the Temporal client that start a run. A span without a parent that is not one of
 * these (the dependency monitor's `SELECT 1`, a schedule reconcile) belongs to no run and is
 * not recorded, so a trace backend holds runs, not a trace every five seconds per process.
 */
const RUN_STARTING_SPANS = [
  "StartWorkflow:",
  "SignalWithStartWorkflow:",
  "UpdateWithStartWorkflow:",
];

const runRootsOnly: Sampler = {
  shouldSample: (_context, _traceId, spanName) => ({
    decision: RUN_STARTING_SPANS.some((prefix) => spanName.startsWith(prefix))
      ? SamplingDecision.RECORD_AND_SAMPLED
      : SamplingDecision.NOT_RECORD,
  }),
  toString: () => "RunRootsOnly",
};

/** Prisma's per-call bookkeeping spans; the operation, query and transaction spans stay. */
const PRISMA_SPANS_IGNORED = [
  "prisma:client:serialize",
  "prisma:client:compile",
  "prisma:client:connect",
];

interface Provider {
  provider: NodeTracerProvider;
  sinks: InjectedSinks<OpenTelemetrySinks>;
  prisma: PrismaInstrumentation;
  users: number;
}

/** One provider per process (the OpenTelemetry API is process-global); counted by its users. */
let shared: Provider | undefined;

function createProvider(config: Config, endpoint: string, log: Logger): Provider {
  const tracesUrl = otlpTracesUrl(endpoint);
  // OTel's own diagnostics (a failed export) as our JSON lines, any URL credentials hidden.
  const say = (message: string, args: unknown[]) =>
    redactUrlCredentials(format(message, ...args)).slice(0, 1000);
  diag.setLogger(
    {
      error: (m, ...a) => log.warn({ component: "otel" }, say(m, a)),
      warn: (m, ...a) => log.warn({ component: "otel" }, say(m, a)),
      info: () => undefined,
      debug: () => undefined,
      verbose: () => undefined,
    },
    { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
  );
  const resource = Resource.default().merge(
    new Resource({
      "service.name": config.tracing.serviceName,
      "service.instance.id": config.scheduler.instanceId,
    }),
  );
  const processor = new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl }));
  const provider = new NodeTracerProvider({
    resource,
    sampler: new ParentBasedSampler({ root: runRootsOnly }),
    spanProcessors: [processor],
  });
  // The AsyncLocalStorage context manager and W3C propagation: an activity's span is the
  // parent of every span made while it runs, and the workflow's context crosses in headers.
  provider.register();
  const prisma = new PrismaInstrumentation({ ignoreSpanTypes: PRISMA_SPANS_IGNORED });
  prisma.setTracerProvider(provider);
  prisma.enable();

  const exporter = makeWorkflowExporter(processor, resource);
  const sinks: InjectedSinks<OpenTelemetrySinks> = {
    exporter: {
      export: {
        // The package copies the whole WorkflowInfo (memo, search attributes, last result...)
        // onto each workflow span; these fields identify the run, and nothing else goes out.
        fn: (info, spans) =>
          exporter.export.fn(
            {
              workflowId: info.workflowId,
              runId: info.runId,
              workflowType: info.workflowType,
              taskQueue: info.taskQueue,
              namespace: info.namespace,
              attempt: info.attempt,
            } as typeof info,
            spans,
          ),
      },
    },
  };
  log.info(
    { endpoint: describeUrl(tracesUrl), serviceName: config.tracing.serviceName },
    "tracing: exporting spans over OTLP/HTTP",
  );
  return { provider, sinks, prisma, users: 0 };
}

/** Tracing that exports to `endpoint`; the provider is shared by every user in the process. */
export function startOtlpTracing(config: Config, endpoint: string, log: Logger): Tracing {
  shared ??= createProvider(config, endpoint, log);
  const current = shared;
  current.users += 1;
  let stopped = false;
  return {
    enabled: true,
    workerOptions: {
      interceptors: {
        activity: [
          (ctx) => ({
            inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
            outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
          }),
        ],
      },
      sinks: current.sinks,
    },
    clientInterceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] },
    shutdown: async () => {
      if (stopped) return;
      stopped = true;
      current.users -= 1;
      if (current.users > 0) {
        await current.provider.forceFlush();
        return;
      }
      if (shared === current) shared = undefined;
      current.prisma.disable();
      // Exports what is still buffered, then stops; the globals go back to no-ops.
      await current.provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
      diag.disable();
    },
  };
}
