import type { ScheduleOverlapPolicy } from "@temporalio/client";
import type {
  BatchCreationWorkflowInput,
  BatchStatusWorkflowInput,
} from "../workflows/batch-processing.ts";
import type { CsvImportWorkflowInput } from "../workflows/csv-import.ts";
import type { ImportProcessingWorkflowInput } from "../workflows/import-processing.ts";
import type { SessionProcessingWorkflowInput } from "../workflows/session-processing.ts";
import type { Config } from "./config.ts";

/** A kind of worker: one task queue, served by any number of replicas. */
export const WORKER_TYPES = [
  "csv-import",
  "import-processing",
  "session-processing",
  "batch-processing",
] as const;
export type WorkerType = (typeof WORKER_TYPES)[number];

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
  /** `<TYPE>_ENABLED`: false removes the schedule (the worker keeps draining runs). */
  enabled: boolean;
  /** `<TYPE>_AUTO_START`: false creates the schedule paused, with a note saying why. */
  autoStart: boolean;
  /** `<TYPE>_CRITICAL`: false makes this scheduler's ERROR degrade health instead of failing it. */
  critical: boolean;
}

/** Names carry the region so two regions share one namespace without touching each other. */
export function qualifiedName(base: string, region: string | undefined): string {
  return region ? `livedash-${base}-${region}` : `livedash-${base}`;
}

export function taskQueueFor(workerType: WorkerType, config: Config): string {
  return qualifiedName(workerType, config.region);
}

/** Every schedule of this deployment, derived from configuration. */
export function schedulerDefinitions(config: Config): SchedulerDefinition[] {
  const common = {
    timeZone: config.scheduler.timeZone,
    overlap: "SKIP" as const,
    catchupWindowMs: config.scheduler.catchupWindowMs,
  };
  const region = config.companiesFilter?.region;

  const csvImportInput: CsvImportWorkflowInput = {
    schedulerId: "csv-import",
    scheduleId: qualifiedName("csv-import", config.region),
    batchSize: config.csvImport.batchSize,
    maxConcurrent: config.csvImport.maxConcurrent,
    fetchTimeoutMs: config.csvImport.timeoutMs,
    heartbeatTimeoutMs: config.scheduler.heartbeatTimeoutMs,
    region,
  };

  const importProcessingInput: ImportProcessingWorkflowInput = {
    schedulerId: "import-processing",
    scheduleId: qualifiedName("import-processing", config.region),
    batchSize: config.importProcessing.batchSize,
    maxConcurrent: config.importProcessing.maxConcurrent,
    maxPerRun: config.importProcessing.batchSize * 10,
    timeoutMs: config.importProcessing.timeoutMs,
    heartbeatTimeoutMs: config.scheduler.heartbeatTimeoutMs,
    region,
  };

  const sessionProcessingInput: SessionProcessingWorkflowInput = {
    schedulerId: "session-processing",
    scheduleId: qualifiedName("session-processing", config.region),
    batchSize: config.sessionProcessing.batchSize,
    mode: config.analysis.mode,
    maxConcurrent: config.analysis.maxConcurrent,
    region,
  };
  const batchCreationInput: BatchCreationWorkflowInput = {
    schedulerId: "batch-processing",
    scheduleId: qualifiedName("batch-processing", config.region),
    minRequests: config.batchProcessing.minRequests,
    maxWaitMs: config.batchProcessing.maxWaitMs,
    maxRequests: config.batchProcessing.maxRequests,
    region,
  };
  const batchStatusInput: BatchStatusWorkflowInput = {
    schedulerId: "batch-status",
    scheduleId: qualifiedName("batch-status", config.region),
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
      runTimeoutMs: 2 * 3_600_000,
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

export function definitionsForWorker(
  workerType: WorkerType,
  config: Config,
): SchedulerDefinition[] {
  return schedulerDefinitions(config).filter((d) => d.workerType === workerType);
}

export function isWorkerType(value: string): value is WorkerType {
  return (WORKER_TYPES as readonly string[]).includes(value);
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
