import { trace } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type ConfigError, loadConfig } from "../adapters/config.ts";
import { createLogger } from "../adapters/logger.ts";
import { otlpTracesUrl } from "../adapters/tracing.ts";
import type { WorkerType } from "../domain/scheduler-id.ts";
import { type OpenAIStandIn, startOpenAIStandIn } from "../openai-stand-in/server.ts";
import { type RunningWorkers, startWorkers } from "../workers/runtime.ts";
import type { CsvImportRunCounts } from "../workflows/csv-import.ts";
import type { RunSummary } from "../workflows/run-record.ts";
import {
  basicAuthOk,
  startHttpServer,
  startTestStack,
  type TestHttpServer,
  type TestStack,
  triggerAndWait,
} from "./support/harness.ts";
import {
  type OtlpReceiver,
  type ReceivedSpan,
  startOtlpReceiver,
} from "./support/otlp-receiver.ts";

const USER = "trace-export";
const PASSWORD = "Tr4ce-secret-pw";
const BASIC = Buffer.from(`${USER}:${PASSWORD}`).toString("base64");

const OPENAI_KEY = "sk-trace-test-key-0123456789";

const csvFor = (base: string) =>
  [
    `tr-1,30.04.2025 11:41:48,30.04.2025 11:45:02,31.176.221.57,BA,english,1,happy,no,no,${base}/t/tr-1.txt,3.977,6537,0.0010,Greeting,Good day`,
    "tr-2,30.04.2025 12:00:00,30.04.2025 12:10:00,10.0.0.2,NL,Dutch,4,neutral,yes,no,,1.5,120,0.0002,Payroll,Hi",
  ].join("\n");

const TRANSCRIPT = [
  "[30.04.2025 11:41:48] User: How many vacation days do I have left?",
  "[30.04.2025 11:42:00] Assistant: You have 12 vacation days left.",
].join("\n");

interface LogLine {
  msg?: string;
  component?: string;
  workflowId?: string;
  traceId?: string;
}

/** The chain of span names from `span` up to the trace's root. */
function ancestry(span: ReceivedSpan, byId: Map<string, ReceivedSpan>): string[] {
  const names: string[] = [];
  for (let s: ReceivedSpan | undefined = span; s; s = byId.get(s.parentSpanId ?? "")) {
    names.push(s.name);
  }
  return names;
}

describe("tracing configuration", () => {
  it("OTEL_EXPORTER_OTLP_ENDPOINT is an http(s) URL, named when it is not", () => {
    const problems = (value: string) => {
      try {
        loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: value });
        return [];
      } catch (error) {
        return (error as ConfigError).problems;
      }
    };
    expect(problems("collector:4318")).toEqual([
      'OTEL_EXPORTER_OTLP_ENDPOINT: expected a http: or https: URL, got "collector:4318"',
    ]);
    expect(problems("grpc://collector:4317")).toHaveLength(1);
    expect(loadConfig({}).tracing).toEqual({
      otlpEndpoint: undefined,
      serviceName: "livedash-worker",
    });
    expect(loadConfig({ OTEL_SERVICE_NAME: "eu-workers" }).tracing.serviceName).toBe("eu-workers");
  });

  it("spans go to <endpoint>/v1/traces, as the OTLP specification says", () => {
    expect(otlpTracesUrl("http://collector:4318")).toBe("http://collector:4318/v1/traces");
    expect(otlpTracesUrl("https://otel.example/base/")).toBe("https://otel.example/base/v1/traces");
  });
});

/**
 * Traces against the real services: a worker started with OTEL_EXPORTER_OTLP_ENDPOINT pointed at
 * a local OTLP/HTTP receiver exports one connected trace per scheduled csv-import run (workflow,
 * activities, the CSV fetch, SQL); without the variable nothing is sent and no span is recorded.
 */
describe("OpenTelemetry traces of a scheduled run", () => {
  let stack: TestStack;
  let source: TestHttpServer;
  let receiver: OtlpReceiver;
  let openai: OpenAIStandIn;
  let workers: RunningWorkers | undefined;
  const lines: LogLine[] = [];
  const log = createLogger("info", "worker", {
    write: (line: string) => {
      lines.push(JSON.parse(line) as LogLine);
    },
  });
  let scheduleId: string;

  /** Workers of these types on the test stack, configured by its environment plus `env`. */
  function startTracedWorkers(
    types: WorkerType[],
    env?: Record<string, string>,
  ): Promise<RunningWorkers> {
    return startWorkers({
      config: env ? loadConfig({ ...stack.env, ...env }) : stack.config,
      db: stack.db,
      log,
      types,
      workflowBundle: { codePath: inject("workflowBundlePath") },
    });
  }

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    openai = await startOpenAIStandIn({ apiKey: OPENAI_KEY });
    source = await startHttpServer((req, res) => {
      if (req.url?.startsWith("/open/")) {
        res.writeHead(200, { "content-type": "text/csv" }).end(csvFor(source.url));
        return;
      }
      if (!basicAuthOk(req, USER, PASSWORD)) {
        res.writeHead(401).end();
        return;
      }
      if (req.url?.startsWith("/t/")) {
        res.writeHead(200, { "content-type": "text/plain" }).end(TRANSCRIPT);
        return;
      }
      res.writeHead(200, { "content-type": "text/csv" }).end(csvFor(source.url));
    });
    stack = await startTestStack();
    scheduleId = stack.defs["csv-import"]?.scheduleId ?? "";
    await stack.db.company.create({
      data: {
        name: "Traced",
        // A query string standing in for a token some sources put in their export URLs.
        csvUrl: `${source.url}/export.csv?token=url-token-123`,
        csvUsername: USER,
        csvPassword: PASSWORD,
      },
    });
  });

  afterAll(async () => {
    await workers?.shutdown();
    await stack?.close();
    await source?.close();
    await receiver?.close();
    await openai?.close();
  });

  it("without OTEL_EXPORTER_OTLP_ENDPOINT a run sends nothing and records no span", async () => {
    workers = await startTracedWorkers(["csv-import"]);
    const { result } = await triggerAndWait<RunSummary<CsvImportRunCounts>>(
      stack.client,
      scheduleId,
    );
    expect(result.counts).toMatchObject({ imported: 1, inserted: 2 });
    // No provider was registered: the API hands out spans that record nothing.
    expect(trace.getTracer("probe").startSpan("probe").isRecording()).toBe(false);
    await workers.shutdown();
    workers = undefined;
    expect(receiver.requests).toEqual([]);
    expect(lines.filter((l) => l.component === "otel" || /tracing/.test(l.msg ?? ""))).toEqual([]);
    expect(lines.filter((l) => l.traceId)).toEqual([]);
  });

  it("with it, one csv-import run is one connected trace: workflow, activities, fetch, SQL", async () => {
    workers = await startTracedWorkers(["csv-import"], {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: "livedash-traces-test",
    });
    const { workflowId, result } = await triggerAndWait<RunSummary<CsvImportRunCounts>>(
      stack.client,
      scheduleId,
    );
    expect(result.counts).toMatchObject({ imported: 1, inserted: 0, duplicates: 2 });
    // Shutting the workers down flushes the spans still buffered.
    await workers.shutdown();
    workers = undefined;

    const spans = receiver.spans();
    expect(receiver.requests.every((r) => r.path === "/v1/traces")).toBe(true);
    // Everything exported belongs to this run: one trace id, nothing from background work.
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const roots = spans.filter((s) => !s.parentSpanId);
    expect(roots.map((s) => s.name)).toEqual(["RunWorkflow:csvImportWorkflow"]);
    expect(roots[0]?.attributes.workflowId).toBe(workflowId);
    // Connected: every other span's parent is in the trace.
    const orphans = spans.filter((s) => s.parentSpanId && !byId.has(s.parentSpanId));
    expect(orphans.map((s) => s.name)).toEqual([]);
    for (const span of spans) {
      expect(span.resource["service.name"]).toBe("livedash-traces-test");
    }

    const names = spans.map((s) => s.name);
    for (const activity of ["listCsvImportCompanies", "importCompanyCsv"]) {
      const run = spans.find((s) => s.name === `RunActivity:${activity}`);
      expect(run, `RunActivity:${activity}`).toBeDefined();
      if (!run) continue;
      expect(ancestry(run, byId)).toEqual([
        `RunActivity:${activity}`,
        `StartActivity:${activity}`,
        "RunWorkflow:csvImportWorkflow",
      ]);
      expect(run.attributes.temporalWorkflowId).toBe(workflowId);
    }

    const fetch = spans.find((s) => s.name === "fetch csv");
    expect(fetch, `a fetch csv span among ${names.join(", ")}`).toBeDefined();
    expect(byId.get(fetch?.parentSpanId ?? "")?.name).toBe("RunActivity:importCompanyCsv");
    expect(fetch?.attributes).toMatchObject({
      "http.request.method": "GET",
      "url.full": `${source.url}/export.csv`,
      "http.response.status_code": 200,
      "livedash.fetch.purpose": "csv",
    });

    // SQL: the bulk insert (node-postgres) and Prisma's statements, inside the import activity.
    const insert = spans.find((s) => s.name === "INSERT SessionImport");
    expect(insert?.attributes["db.query.text"]).toMatch(/^INSERT INTO "SessionImport"/);
    expect(ancestry(insert as ReceivedSpan, byId)).toContain("RunActivity:importCompanyCsv");
    const prismaQueries = spans.filter((s) => s.name === "prisma:client:db_query");
    expect(prismaQueries.length).toBeGreaterThan(0);
    expect(
      prismaQueries.some((q) => ancestry(q, byId).includes("RunActivity:importCompanyCsv")),
    ).toBe(true);

    // No credential, Basic token or URL token in anything sent.
    const sent = receiver.requests.map((r) => r.body).join("\n");
    expect(sent).toContain("export.csv");
    for (const secret of [PASSWORD, BASIC, "url-token-123"]) {
      expect(sent).not.toContain(secret);
    }
    expect(lines.filter((l) => l.component === "otel")).toEqual([]);
    expect(lines.some((l) => l.msg === "tracing: exporting spans over OTLP/HTTP")).toBe(true);
    // The activity's log lines name the trace, so a line leads to its run's trace and back.
    const finished = lines.filter(
      (l) => l.msg === "csv import finished" && l.workflowId === workflowId,
    );
    expect(finished).toHaveLength(1);
    expect(finished[0]?.traceId).toBe(roots[0]?.traceId);
  });

  it("the transcript fetch, the message insert and each OpenAI call are in their runs' traces", async () => {
    const already = receiver.spans().length;
    workers = await startTracedWorkers(["import-processing", "session-processing"], {
      OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/`,
      ANALYSIS_MODE: "direct",
      OPENAI_BASE_URL: openai.url,
      OPENAI_API_KEY: OPENAI_KEY,
    });
    const importRun = await triggerAndWait<RunSummary<Record<string, number>>>(
      stack.client,
      stack.defs["import-processing"]?.scheduleId ?? "",
    );
    expect(importRun.result.outcome).toBe("SUCCEEDED");
    const analysisRun = await triggerAndWait<RunSummary<Record<string, number>>>(
      stack.client,
      stack.defs["session-processing"]?.scheduleId ?? "",
    );
    expect(analysisRun.result.counts).toMatchObject({ mode: "direct", analysed: 1 });
    await workers.shutdown();
    workers = undefined;

    const spans = receiver.spans().slice(already);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const roots = spans.filter((s) => !s.parentSpanId);
    // Two runs, two traces, each rooted in its workflow and connected.
    expect(roots.map((s) => s.attributes.workflowId).sort()).toEqual(
      [importRun.workflowId, analysisRun.workflowId].sort(),
    );
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(2);
    expect(spans.filter((s) => s.parentSpanId && !byId.has(s.parentSpanId))).toEqual([]);
    const traceOf = (workflowId: string) =>
      roots.find((r) => r.attributes.workflowId === workflowId)?.traceId;

    const transcript = spans.find((s) => s.name === "fetch transcript");
    expect(transcript?.traceId).toBe(traceOf(importRun.workflowId));
    expect(byId.get(transcript?.parentSpanId ?? "")?.name).toBe("RunActivity:processImport");
    expect(transcript?.attributes["url.full"]).toBe(`${source.url}/t/tr-1.txt`);
    const messages = spans.find((s) => s.name === "INSERT Message");
    expect(ancestry(messages as ReceivedSpan, byId)).toContain("RunActivity:processImport");

    const call = spans.find((s) => s.name === "openai POST /v1/chat/completions");
    expect(call?.traceId).toBe(traceOf(analysisRun.workflowId));
    expect(byId.get(call?.parentSpanId ?? "")?.name).toBe("RunActivity:requestAnalysis");
    expect(call?.attributes).toMatchObject({
      "gen_ai.system": "openai",
      "gen_ai.request.model": "gpt-4o-mini",
      "http.response.status_code": 200,
    });

    const sent = receiver.requests.map((r) => r.body).join("\n");
    for (const secret of [OPENAI_KEY, PASSWORD, BASIC, "vacation days"]) {
      expect(sent).not.toContain(secret);
    }
  });

  it("a run that continues as new stays one trace: each execution under the one before", async () => {
    await stack.db.company.createMany({
      data: Array.from({ length: 90 }, (_, i) => ({
        name: `Many ${i}`,
        csvUrl: `${source.url}/open/${i}.csv`,
      })),
    });
    const already = receiver.spans().length;
    // A tiny history budget makes the run hand over to new executions every ~40 companies.
    workers = await startTracedWorkers(["csv-import"], {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      RUN_HISTORY_EVENT_BUDGET: "300",
      RUN_MAX_IN_FLIGHT: "10",
    });
    const { workflowId, result } = await triggerAndWait<RunSummary<CsvImportRunCounts>>(
      stack.client,
      scheduleId,
      { timeoutMs: 120_000 },
    );
    expect(result.counts).toMatchObject({ companies: 91, imported: 91 });
    const [record] = await stack.db.schedulerRun.findMany({ where: { workflowId } });
    expect(record?.executions).toBeGreaterThan(1);
    await workers.shutdown();
    workers = undefined;

    const spans = receiver.spans().slice(already);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);
    expect(spans.filter((s) => !s.parentSpanId).map((s) => s.attributes.workflowId)).toEqual([
      workflowId,
    ]);
    expect(spans.filter((s) => s.parentSpanId && !byId.has(s.parentSpanId))).toEqual([]);
    const executions = spans.filter((s) => s.name === "RunWorkflow:csvImportWorkflow");
    expect(executions).toHaveLength(record?.executions ?? 0);
    expect(spans.filter((s) => s.name === "RunActivity:importCompanyCsv")).toHaveLength(91);
    expect(spans.filter((s) => s.name === "fetch csv")).toHaveLength(91);
  }, 180_000);
});
