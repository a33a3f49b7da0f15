import { FAILING_THRESHOLDS } from "../adapters/db/company-import-health.ts";
import {
  AIBatchRequestStatus,
  AIRequestStatus,
  ImportStatus,
  ProcessingStage,
  ProcessingStatus,
} from "../adapters/db/generated/prisma/enums.ts";
import { FINISHED_RUN_OUTCOMES } from "../domain/run-outcome.ts";
import { emptyLateness, RUN_LATENESS_BUCKETS } from "./metrics-reads.ts";
import {
  type PipelineCounts,
  RUN_DURATION_BUCKETS,
  type SchedulerView,
  type Snapshot,
} from "./metrics-scrape.ts";
import type { SchedulerDefinition } from "./scheduler-registry.ts";
import { SCHEDULER_STATES } from "./scheduler-state.ts";

/**
 * The catalogue of platform metrics: each family's name, help, type and how its samples come
 * out of one scrape's snapshot (control-plane/metrics-scrape.ts). Names and labels here are the
 * contract with dashboards and alert rules (deploy/); change them only with those.
 */

export const METRIC_PREFIX = "livedash_";

export type Labels = Record<string, string | number>;

export interface Sample {
  labels: Labels;
  value: number;
  /** Series name when it differs from the family's (histogram _bucket, _sum, _count). */
  metricName?: string;
}

export interface MetricSpec {
  name: string;
  help: string;
  type: "gauge" | "counter" | "histogram";
  samples(snapshot: Snapshot): Sample[];
}

/** `csv-import@us` (an API reporting several regions) is scheduler csv-import, region us. */
function schedulerLabels(def: SchedulerDefinition): Labels {
  const [scheduler = def.id, suffix] = def.id.split("@");
  return { scheduler, region: suffix ?? def.region ?? "", schedule_id: def.scheduleId };
}

/** One sample per scheduler for which `value` is known. */
function perScheduler(
  snapshot: Snapshot,
  value: (view: SchedulerView) => number | undefined,
): Sample[] {
  return snapshot.schedulers.flatMap((view) => {
    const v = value(view);
    return v === undefined ? [] : [{ labels: schedulerLabels(view.def), value: v }];
  });
}

function seconds(date: Date | undefined): number | undefined {
  return date ? date.getTime() / 1000 : undefined;
}

/** One sample per enum value, zeros included, so every series exists from the start. */
function perValue(
  label: string,
  values: readonly string[],
  counts: Map<string, number> | undefined,
): Sample[] {
  if (!counts) return [];
  return values.map((v) => ({ labels: { [label]: v }, value: counts.get(v) ?? 0 }));
}

function pipelineValue(snapshot: Snapshot, pick: (p: PipelineCounts) => number): Sample[] {
  return snapshot.pipeline ? [{ labels: {}, value: pick(snapshot.pipeline) }] : [];
}

function runsByOutcome(snapshot: Snapshot): Sample[] {
  return snapshot.schedulers.flatMap(({ def, runs }) =>
    runs
      ? FINISHED_RUN_OUTCOMES.map((outcome) => ({
          labels: { ...schedulerLabels(def), outcome },
          value: runs.byOutcome.get(outcome) ?? 0,
        }))
      : [],
  );
}

function durationHistogram(name: string, snapshot: Snapshot): Sample[] {
  return snapshot.schedulers.flatMap(({ def, runs }) =>
    runs
      ? histogramSamples(name, schedulerLabels(def), RUN_DURATION_BUCKETS, {
          buckets: runs.buckets,
          count: runs.finished,
          sum: runs.durationSeconds,
        })
      : [],
  );
}

function histogramSamples(
  name: string,
  labels: Labels,
  bounds: readonly number[],
  data: { buckets: number[]; count: number; sum: number },
): Sample[] {
  const bucket = (le: number | string, value: number): Sample => ({
    labels: { ...labels, le },
    value,
    metricName: `${name}_bucket`,
  });
  return [
    ...bounds.map((le, i) => bucket(le, data.buckets[i] ?? 0)),
    bucket("+Inf", data.count),
    { labels, value: data.sum, metricName: `${name}_sum` },
    { labels, value: data.count, metricName: `${name}_count` },
  ];
}

const RUN_DURATION = `${METRIC_PREFIX}scheduler_run_duration_seconds`;
const RUN_LATENESS = `${METRIC_PREFIX}scheduler_run_lateness_seconds`;

/** Temporal's schedule counters and the run table's lateness, per schedule. */
const SCHEDULE_METRICS: MetricSpec[] = [
  {
    name: `${METRIC_PREFIX}scheduler_interval_seconds`,
    help: "Time between the schedule's next two actions according to Temporal.",
    type: "gauge",
    samples: (s) =>
      perScheduler(s, ({ status }) => {
        const [first, second] = status?.schedule?.info.nextActionTimes ?? [];
        return first && second ? (second.getTime() - first.getTime()) / 1000 : undefined;
      }),
  },
  {
    name: `${METRIC_PREFIX}scheduler_actions_skipped_overlap_total`,
    help: "Runs Temporal skipped because the previous run was still going (overlap policy).",
    type: "counter",
    samples: (s) =>
      perScheduler(s, ({ status }) => status?.schedule?.info.numActionsSkippedOverlap),
  },
  {
    name: `${METRIC_PREFIX}scheduler_actions_missed_catchup_total`,
    help: "Runs Temporal never started because they fell outside the catch-up window.",
    type: "counter",
    samples: (s) =>
      perScheduler(s, ({ status }) => status?.schedule?.info.numActionsMissedCatchupWindow),
  },
  {
    name: `${METRIC_PREFIX}scheduler_last_run_lateness_seconds`,
    help: "Start minus scheduled time of the latest scheduled run.",
    type: "gauge",
    samples: (s) => perScheduler(s, ({ def }) => s.lateness?.get(def.scheduleId)?.lastSeconds),
  },
  {
    name: RUN_LATENESS,
    help: "Start minus scheduled time of scheduled runs, from the run table.",
    type: "histogram",
    samples: (s) =>
      s.lateness
        ? s.schedulers.flatMap(({ def }) => {
            const l = s.lateness?.get(def.scheduleId) ?? emptyLateness();
            return histogramSamples(RUN_LATENESS, schedulerLabels(def), RUN_LATENESS_BUCKETS, {
              buckets: l.buckets,
              count: l.runs,
              sum: l.sumSeconds,
            });
          })
        : [],
  },
  {
    name: `${METRIC_PREFIX}task_queue_pollers`,
    help: "Workers Temporal saw polling each task queue whose schedule exists (0: no worker).",
    type: "gauge",
    samples: (s) => {
      const queues = new Map<string, Sample>();
      for (const { def, status } of s.schedulers) {
        if (!status?.schedule || status.unreachable) continue;
        const { region } = schedulerLabels(def);
        queues.set(def.taskQueue, {
          labels: { task_queue: def.taskQueue, region: region ?? "" },
          value: status.pollers.length,
        });
      }
      return [...queues.values()];
    },
  },
  {
    name: `${METRIC_PREFIX}companies_failing`,
    help: "ACTIVE companies whose last N or more CSV imports failed, N = min_consecutive_failures.",
    type: "gauge",
    samples: (s) => {
      if (!s.companiesFailing) return [];
      const counts = [...s.companiesFailing];
      // This deployment's region always has its series, zeros included.
      if (!counts.some((c) => c.region === s.region)) {
        for (const n of FAILING_THRESHOLDS)
          counts.push({ region: s.region, minConsecutiveFailures: n, companies: 0 });
      }
      return counts.map((c) => ({
        labels: { region: c.region, min_consecutive_failures: c.minConsecutiveFailures },
        value: c.companies,
      }));
    },
  },
];

export const METRICS: MetricSpec[] = [
  {
    name: `${METRIC_PREFIX}scheduler_up`,
    help: "1 when the scheduler is RUNNING as the health check reports it, else 0.",
    type: "gauge",
    samples: (s) => perScheduler(s, ({ status }) => status && Number(status.status === "RUNNING")),
  },
  {
    name: `${METRIC_PREFIX}scheduler_state`,
    help: "1 for the scheduler's current health state (RUNNING, PAUSED, STOPPED, STARTING, ERROR).",
    type: "gauge",
    samples: (s) =>
      s.schedulers.flatMap(({ def, status }) =>
        status
          ? SCHEDULER_STATES.map((state) => ({
              labels: { ...schedulerLabels(def), state },
              value: Number(status.status === state),
            }))
          : [],
      ),
  },
  {
    name: `${METRIC_PREFIX}scheduler_paused`,
    help: "1 when the Temporal schedule is paused, 0 when not; absent when it cannot be read.",
    type: "gauge",
    samples: (s) =>
      perScheduler(s, ({ status }) => status?.schedule && Number(status.schedule.state.paused)),
  },
  {
    name: `${METRIC_PREFIX}scheduler_next_run_timestamp_seconds`,
    help: "Unix time of the schedule's next action according to Temporal.",
    type: "gauge",
    samples: (s) =>
      perScheduler(s, ({ status }) => seconds(status?.schedule?.info.nextActionTimes[0])),
  },
  {
    name: `${METRIC_PREFIX}scheduler_last_run_timestamp_seconds`,
    help: "Unix time the latest recorded run started.",
    type: "gauge",
    samples: (s) => perScheduler(s, ({ runs }) => seconds(runs?.lastStartedAt)),
  },
  {
    name: `${METRIC_PREFIX}scheduler_last_success_timestamp_seconds`,
    help: "Unix time the latest SUCCEEDED or PARTIAL run finished.",
    type: "gauge",
    samples: (s) => perScheduler(s, ({ runs }) => seconds(runs?.lastSuccessAt)),
  },
  {
    name: `${METRIC_PREFIX}scheduler_runs_total`,
    help: "Finished runs by outcome, counted in the run table.",
    type: "counter",
    samples: runsByOutcome,
  },
  {
    name: `${METRIC_PREFIX}scheduler_runs_in_progress`,
    help: "Runs recorded as started and not finished yet.",
    type: "gauge",
    samples: (s) => perScheduler(s, ({ runs }) => runs && (runs.byOutcome.get("RUNNING") ?? 0)),
  },
  {
    name: RUN_DURATION,
    help: "Duration of finished runs, from the run table.",
    type: "histogram",
    samples: (s) => durationHistogram(RUN_DURATION, s),
  },
  ...SCHEDULE_METRICS,
  {
    name: `${METRIC_PREFIX}imports_waiting`,
    help: "Imported CSV rows waiting for import processing (PENDING).",
    type: "gauge",
    samples: (s) => pipelineValue(s, (p) => p.imports.get(ImportStatus.PENDING) ?? 0),
  },
  {
    name: `${METRIC_PREFIX}imports`,
    help: "Imported CSV rows by status.",
    type: "gauge",
    samples: (s) => perValue("status", Object.values(ImportStatus), s.pipeline?.imports),
  },
  {
    name: `${METRIC_PREFIX}sessions`,
    help: "Session processing stages by stage and status.",
    type: "gauge",
    samples: (s) => {
      const stages = s.pipeline?.stages;
      if (!stages) return [];
      return Object.values(ProcessingStage).flatMap((stage) =>
        Object.values(ProcessingStatus).map((status) => ({
          labels: { stage, status },
          value: stages.get(`${stage}/${status}`) ?? 0,
        })),
      );
    },
  },
  {
    name: `${METRIC_PREFIX}ai_requests`,
    help: "AI analysis requests by status.",
    type: "gauge",
    samples: (s) => perValue("status", Object.values(AIRequestStatus), s.pipeline?.requests),
  },
  {
    name: `${METRIC_PREFIX}ai_batches`,
    help: "OpenAI batches by status.",
    type: "gauge",
    samples: (s) => perValue("status", Object.values(AIBatchRequestStatus), s.pipeline?.batches),
  },
  {
    name: `${METRIC_PREFIX}ai_cost_eur_total`,
    help: "Cost in EUR of all AI analysis requests, summed in the request table.",
    type: "counter",
    samples: (s) => pipelineValue(s, (p) => p.costEur),
  },
  {
    name: `${METRIC_PREFIX}ai_tokens_total`,
    help: "Tokens used by AI analysis requests, by kind (prompt, completion).",
    type: "counter",
    samples: (s) =>
      s.pipeline
        ? [
            { labels: { kind: "prompt" }, value: s.pipeline.promptTokens },
            { labels: { kind: "completion" }, value: s.pipeline.completionTokens },
          ]
        : [],
  },
];
