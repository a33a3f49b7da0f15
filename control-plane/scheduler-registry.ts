import type { ScheduleOverlapPolicy } from "@temporalio/client";
import { CronExpressionParser } from "cron-parser";
import type { Config } from "../adapters/config.ts";
import { qualifiedName, type WorkerType } from "../domain/scheduler-id.ts";
import type {
  BatchCreationWorkflowInput,
  BatchStatusWorkflowInput,
} from "../workflows/batch-processing.ts";
import type { CsvImportWorkflowInput } from "../workflows/csv-import.ts";
import type { HistoryRetentionWorkflowInput } from "../workflows/history-retention.ts";
import type { ImportProcessingWorkflowInput } from "../workflows/import-processing.ts";
import type { SessionProcessingWorkflowInput } from "../workflows/session-processing.ts";

/** One Temporal schedule and what it starts. */
export interface SchedulerDefinition {
  /** Stable id used by the API and the run table, e.g. "csv-import". */
  id: string;
  name: string;
  description: string;
  workerType: WorkerType;
  /** Temporal schedule id; the started workflow ids derive from it. */
  scheduleId: string;
  taskQueue: string;
  workflowType: string;
  workflowArgs: unknown[];
  cron: string;
  timeZone: string;
  overlap: ScheduleOverlapPolicy;
  catchupWindowMs: number;
  /** Upper bound of one run, so a stuck run cannot hold the schedule forever (SKIP overlap). */
  runTimeoutMs: number;
  /** The companies' region this schedule works on (CSV_COMPANIES_FILTER), for its backlog. */
  companiesRegion: string | undefined;
  /** The deployment region (REGION) the schedule belongs to, if any. */
  region?: string | undefined;
  /** `<TYPE>_ENABLED`: false removes the schedule (the worker keeps draining runs). */
  enabled: boolean;
  /** `<TYPE>_AUTO_START`: false creates the schedule paused, with a note saying why. */
  autoStart: boolean;
  /** `<TYPE>_CRITICAL`: false makes this scheduler's ERROR degrade health instead of failing it. */
  critical: boolean;
}

export function taskQueueFor(workerType: WorkerType, config: Config): string {
  return qualifiedName(workerType, config.region);
}

/**
 * Direct-mode model calls have a task queue of their own, polled by the session-processing
 * workers: Temporal enforces OPENAI_REQUESTS_PER_SECOND on it across every replica.
 */
export function analysisTaskQueue(config: Config): string {
  return qualifiedName("analysis", config.region);
}

/** Shortest gap between two firings of a cron expression (over its next few firings). */
export function cronIntervalMs(cron: string, timeZone: string): number {
  const times = CronExpressionParser.parse(cron, { tz: timeZone, strict: false })
    .take(6)
    .map((d) => d.getTime());
  let shortest = Number.POSITIVE_INFINITY;
  for (let i = 1; i < times.length; i++) {
    shortest = Math.min(shortest, (times[i] ?? 0) - (times[i - 1] ?? 0));
  }
  return Number.isFinite(shortest) ? shortest : 60_000;
}

/**
 * How long one run takes new work: SCHEDULER_RUN_DEADLINE_MS, else 90% of the schedule's
 * interval (at least 30 s), so a run that drains a large backlog ends before its next firing
 * and the SKIP overlap policy never drops that firing.
 */
export function runDeadlineMs(cron: string, config: Config): number {
  if (config.scheduler.runDeadlineMs > 0) return config.scheduler.runDeadlineMs;
  return Math.max(30_000, Math.floor(cronIntervalMs(cron, config.scheduler.timeZone) * 0.9));
}

/** Companies or batches listed per page by the batch workflows. */
const BATCH_PAGE_SIZE = 100;

/** The longest a session-processing run may take. */
const SESSION_PROCESSING_RUN_TIMEOUT_MS = 2 * 3_600_000;

/** Every schedule of this deployment, derived from configuration. */
export function schedulerDefinitions(config: Config): SchedulerDefinition[] {
  const common = {
    timeZone: config.scheduler.timeZone,
    overlap: "SKIP" as const,
    catchupWindowMs: config.scheduler.catchupWindowMs,
    companiesRegion: config.companiesFilter?.region,
    region: config.region,
  };
  const region = config.companiesFilter?.region;
  const limits = (cron: string) => ({
    deadlineMs: runDeadlineMs(cron, config),
    window: config.scheduler.runWindow,
    historyBudget: config.scheduler.runHistoryBudget,
  });

  const csvImportInput: CsvImportWorkflowInput = {
    schedulerId: "csv-import",
    scheduleId: qualifiedName("csv-import", config.region),
    ...limits(config.csvImport.interval),
    batchSize: config.csvImport.batchSize,
    fetchTimeoutMs: config.csvImport.timeoutMs,
    heartbeatTimeoutMs: config.scheduler.heartbeatTimeoutMs,
    retryIntervalMs: config.csvImport.retryIntervalMs,
    region,
  };

  const importProcessingInput: ImportProcessingWorkflowInput = {
    schedulerId: "import-processing",
    scheduleId: qualifiedName("import-processing", config.region),
    ...limits(config.importProcessing.interval),
    batchSize: config.importProcessing.batchSize,
    timeoutMs: config.importProcessing.timeoutMs,
    heartbeatTimeoutMs: config.scheduler.heartbeatTimeoutMs,
    retryIntervalMs: config.importProcessing.retryIntervalMs,
    region,
  };

  const sessionProcessingInput: SessionProcessingWorkflowInput = {
    schedulerId: "session-processing",
    scheduleId: qualifiedName("session-processing", config.region),
    ...limits(config.sessionProcessing.interval),
    batchSize: config.sessionProcessing.batchSize,
    mode: config.analysis.mode,
    analysisTaskQueue: analysisTaskQueue(config),
    analysisRetryIntervalMs: config.analysis.retryIntervalMs,
    // Twice the longest run: no live run still holds a request claimed that long ago.
    strandedAfterMs: 2 * SESSION_PROCESSING_RUN_TIMEOUT_MS,
    region,
  };
  const batchCreationInput: BatchCreationWorkflowInput = {
    schedulerId: "batch-processing",
    scheduleId: qualifiedName("batch-processing", config.region),
    ...limits(config.batchProcessing.interval),
    pageSize: BATCH_PAGE_SIZE,
    minRequests: config.batchProcessing.minRequests,
    maxWaitMs: config.batchProcessing.maxWaitMs,
    maxRequests: config.batchProcessing.maxRequests,
    region,
  };
  const batchStatusInput: BatchStatusWorkflowInput = {
    schedulerId: "batch-status",
    scheduleId: qualifiedName("batch-status", config.region),
    ...limits(config.batchProcessing.checkInterval),
    pageSize: BATCH_PAGE_SIZE,
    region,
    heartbeatTimeoutMs: config.scheduler.heartbeatTimeoutMs,
  };

  return withSwitches(config, [
    {
      ...common,
      id: "csv-import",
      name: "CSV import",
      description: "Fetches every ACTIVE company's session CSV and stores new rows as imports.",
      workerType: "csv-import",
      scheduleId: csvImportInput.scheduleId,
      taskQueue: taskQueueFor("csv-import", config),
      workflowType: "csvImportWorkflow",
      workflowArgs: [csvImportInput],
      cron: config.csvImport.interval,
      runTimeoutMs: 6 * 3_600_000,
    },
    {
      ...common,
      id: "import-processing",
      name: "Import processing",
      description: "Creates Sessions from pending imports, fetches and parses their transcripts.",
      workerType: "import-processing",
      scheduleId: importProcessingInput.scheduleId,
      taskQueue: taskQueueFor("import-processing", config),
      workflowType: "importProcessingWorkflow",
      workflowArgs: [importProcessingInput],
      cron: config.importProcessing.interval,
      runTimeoutMs: 2 * 3_600_000,
    },
    {
      ...common,
      id: "session-processing",
      name: "Session processing",
      description: "Queues sessions with messages for AI analysis (direct mode: analyses them).",
      workerType: "session-processing",
      scheduleId: sessionProcessingInput.scheduleId,
      taskQueue: taskQueueFor("session-processing", config),
      workflowType: "sessionProcessingWorkflow",
      workflowArgs: [sessionProcessingInput],
      cron: config.sessionProcessing.interval,
      runTimeoutMs: SESSION_PROCESSING_RUN_TIMEOUT_MS,
    },
    {
      ...common,
      id: "batch-processing",
      name: "Batch creation",
      description: "Claims waiting AI requests per company into OpenAI batches and submits them.",
      workerType: "batch-processing",
      scheduleId: batchCreationInput.scheduleId,
      taskQueue: taskQueueFor("batch-processing", config),
      workflowType: "batchCreationWorkflow",
      workflowArgs: [batchCreationInput],
      cron: config.batchProcessing.interval,
      runTimeoutMs: 3_600_000,
    },
    {
      ...common,
      id: "batch-status",
      name: "Batch status check",
      description:
        "Polls OpenAI batches in flight, applies finished results, requeues failed ones.",
      workerType: "batch-processing",
      scheduleId: batchStatusInput.scheduleId,
      taskQueue: taskQueueFor("batch-processing", config),
      workflowType: "batchStatusWorkflow",
      workflowArgs: [batchStatusInput],
      cron: config.batchProcessing.checkInterval,
      runTimeoutMs: 3_600_000,
    },
  ]);
}

/** Each definition with its worker type's switches (batch-status follows batch-processing). */
function withSwitches(
  config: Config,
  defs: Omit<SchedulerDefinition, "enabled" | "autoStart" | "critical">[],
): SchedulerDefinition[] {
  return defs.map((def) => ({ ...def, ...config.scheduler.types[def.workerType] }));
}

/**
 * The platform's own maintenance schedules, beside the four scheduler types: today the daily
 * history retention. They are not scheduler types: health, the admin scheduler list, metrics and
 * alerts report the pipeline's schedulers only, so their documented shape is unchanged. Their
 * runs are recorded in SchedulerRun like any run (schedulerId `history-retention`), and the
 * batch-processing workers host them (their task queue; any worker type could, this one is the
 * least busy). `SCHEDULER_HISTORY_RETENTION_DAYS=0` removes the schedule (history kept forever).
 */
export function maintenanceDefinitions(config: Config): SchedulerDefinition[] {
  const retention = config.historyRetention;
  const input: HistoryRetentionWorkflowInput = {
    schedulerId: "history-retention",
    scheduleId: qualifiedName("history-retention", config.region),
    retentionDays: retention.days,
    batchSize: retention.batchSize,
    heartbeatTimeoutMs: config.scheduler.heartbeatTimeoutMs,
  };
  return [
    {
      id: "history-retention",
      name: "History retention",
      description: `Deletes run and action history older than ${retention.days} days, in batches.`,
      workerType: "batch-processing",
      scheduleId: input.scheduleId,
      taskQueue: taskQueueFor("batch-processing", config),
      workflowType: "historyRetentionWorkflow",
      workflowArgs: [input],
      cron: retention.interval,
      timeZone: config.scheduler.timeZone,
      overlap: "SKIP",
      catchupWindowMs: config.scheduler.catchupWindowMs,
      runTimeoutMs: 6 * 3_600_000,
      companiesRegion: undefined,
      region: config.region,
      enabled: retention.days > 0,
      autoStart: true,
      critical: false,
    },
  ];
}

/** Every schedule a worker of this type reconciles: its schedulers and the maintenance it hosts. */
export function definitionsForWorker(
  workerType: WorkerType,
  config: Config,
): SchedulerDefinition[] {
  return [...schedulerDefinitions(config), ...maintenanceDefinitions(config)].filter(
    (d) => d.workerType === workerType,
  );
}

/**
 * Schedule ids the API knows (for orphan detection): apiDefinitions' schedules and the
 * maintenance schedules of the same regions.
 */
export function apiScheduleIds(config: Config): Set<string> {
  const regions = config.apiRegions ?? [config.region];
  return new Set([
    ...apiDefinitions(config).map((d) => d.scheduleId),
    ...regions.flatMap((region) =>
      maintenanceDefinitions({ ...config, region }).map((d) => d.scheduleId),
    ),
  ]);
}

/**
 * The schedulers an API process reports: its own, or, with API_REGIONS=us,eu, those of every
 * listed region deployment (each filtering its own region's companies), with ids such as
 * `csv-import@us` so they stay apart in health and admin routes.
 */
export function apiDefinitions(config: Config): SchedulerDefinition[] {
  const regions = config.apiRegions;
  if (!regions || (regions.length === 1 && regions[0] === config.region))
    return schedulerDefinitions(config);
  return regions.flatMap((region) =>
    schedulerDefinitions({ ...config, region, companiesFilter: { region } }).map((def) => ({
      ...def,
      id: `${def.id}@${region}`,
    })),
  );
}
