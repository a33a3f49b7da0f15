/**
 * The scheduler state rules (control-plane/scheduler-state.ts), driven with plain snapshots:
 * one row per rule and per precedence between rules, so a change to any branch shows here
 * without a Temporal server or a database. The health aggregation over those states
 * (control-plane/health-report.ts) and the one-definition contracts close the file.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SchedulerRunOutcome } from "../../adapters/db/generated/prisma/enums.ts";
import { PROJECT_ROOT } from "../../adapters/paths.ts";
import { healthReport } from "../../control-plane/health-report.ts";
import {
  type DerivedState,
  deriveState,
  type LiveSchedule,
  SCHEDULER_STATES,
  type SchedulerSnapshot,
  type StateThresholds,
  withBacklogRule,
} from "../../control-plane/scheduler-state.ts";
import type { SchedulerStatus } from "../../control-plane/scheduler-status.ts";
import {
  FINISHED_RUN_OUTCOMES,
  RUN_OUTCOMES,
  SUCCESSFUL_RUN_OUTCOMES,
} from "../../domain/run-outcome.ts";

const NOW = new Date("2026-01-01T12:00:00.000Z");
const ago = (seconds: number) => new Date(NOW.getTime() - seconds * 1000);
const later = (seconds: number) => new Date(NOW.getTime() + seconds * 1000);

const THRESHOLDS: StateThresholds = {
  errorThreshold: 3,
  partialThreshold: 3,
  failedCompaniesPercent: 50,
  deadmanIntervals: 3,
  workerStaleMs: 60_000,
};

const SPEC_NOTE = "the live schedule spec differs from the configuration (reconcile puts it back)";

type Run = { outcome: string; error?: string | null; counts?: unknown; finishedAt?: Date | null };
const run = (outcome: string, more: Omit<Run, "outcome"> = {}) => ({
  outcome,
  error: more.error ?? null,
  counts: more.counts ?? null,
  finishedAt: more.finishedAt === undefined ? ago(30) : more.finishedAt,
});

/** Created a day ago, every minute, a worker polling, the last run a success 30 s ago. */
function liveSchedule(patch: Partial<LiveSchedule> = {}): LiveSchedule {
  return {
    paused: false,
    note: "",
    createdAt: ago(86_400),
    nextActionTimes: [later(30), later(90)],
    runningActions: 0,
    skippedOverlap: 0,
    missedCatchupWindow: 0,
    drift: [],
    ...patch,
  };
}

interface Patch {
  enabled?: boolean;
  schedule?: SchedulerSnapshot["schedule"];
  live?: Partial<LiveSchedule>;
  stored?: SchedulerSnapshot["stored"];
  setting?: { enabled: boolean; updatedBy: string | null } | null;
  lastSuccess?: Date | null;
  runs?: ReturnType<typeof run>[];
  pollers?: SchedulerSnapshot["pollers"];
  unpausedAt?: Date;
  stuck?: SchedulerSnapshot["stuck"];
  backlog?: SchedulerSnapshot["backlog"];
}

function snapshot(patch: Patch = {}): SchedulerSnapshot {
  return {
    enabled: patch.enabled ?? true,
    taskQueue: "q",
    schedule: patch.schedule ?? { kind: "found", schedule: liveSchedule(patch.live) },
    stored: patch.stored ?? {
      kind: "read",
      setting: patch.setting ?? null,
      lastSuccess: patch.lastSuccess === undefined ? ago(30) : patch.lastSuccess,
      recentRuns: patch.runs ?? [run("SUCCEEDED")],
    },
    pollers: patch.pollers ?? [{ identity: "worker@host", lastAccessTime: ago(5).toISOString() }],
    toggles: patch.unpausedAt
      ? { unpause: { kind: "unpause", note: "resume", by: "ops", at: patch.unpausedAt } }
      : {},
    stuck: patch.stuck ?? [],
    ...(patch.backlog ? { backlog: patch.backlog } : {}),
  };
}

const MISSING = { kind: "missing" } as const;
const TEMPORAL_DOWN = {
  kind: "unreachable",
  message: "Temporal did not answer within 1500 ms",
} as const;
const DATABASE_DOWN = {
  kind: "unreachable",
  message: "Invalid prisma call\nCan't reach database server at localhost:5432 \n",
} as const;
const STUCK = [{ workflowId: "wf-1", attempts: 4, reason: "NON_DETERMINISM: history mismatch" }];
const NO_POLLERS: SchedulerSnapshot["pollers"] = [];
const THREE_FAILED = [
  run("FAILED", { error: "boom" }),
  run("TIMED_OUT", { finishedAt: ago(90) }),
  run("CANCELLED", { finishedAt: ago(150) }),
];

const error = (reason: string): DerivedState => ({ status: "ERROR", healthy: false, reason });

describe("deriveState", () => {
  it.each<[string, Patch, DerivedState]>([
    [
      "a live schedule with a polling worker and a recent success is RUNNING",
      {},
      { status: "RUNNING", healthy: true },
    ],

    // Sources that cannot be read
    [
      "PostgreSQL unreachable: ERROR naming the last line of the error",
      { stored: DATABASE_DOWN },
      {
        status: "ERROR",
        healthy: false,
        unreachable: "database",
        reason: "PostgreSQL: Can't reach database server at localhost:5432",
      },
    ],
    [
      "PostgreSQL unreachable wins over a missing schedule",
      { stored: DATABASE_DOWN, schedule: MISSING },
      {
        status: "ERROR",
        healthy: false,
        unreachable: "database",
        reason: "PostgreSQL: Can't reach database server at localhost:5432",
      },
    ],
    [
      "PostgreSQL unreachable wins over Temporal unreachable",
      { stored: DATABASE_DOWN, schedule: TEMPORAL_DOWN },
      {
        status: "ERROR",
        healthy: false,
        unreachable: "database",
        reason: "PostgreSQL: Can't reach database server at localhost:5432",
      },
    ],
    [
      "an empty PostgreSQL message still names the source",
      { stored: { kind: "unreachable", message: "" } },
      { status: "ERROR", healthy: false, unreachable: "database", reason: "PostgreSQL: " },
    ],
    [
      "Temporal unreachable: ERROR with Temporal's message",
      { schedule: TEMPORAL_DOWN },
      {
        status: "ERROR",
        healthy: false,
        unreachable: "temporal",
        reason: "Temporal: Temporal did not answer within 1500 ms",
      },
    ],

    // Missing schedule: STOPPED, healthy only when someone meant it
    [
      "missing and disabled by configuration: STOPPED, healthy",
      { schedule: MISSING, enabled: false, setting: { enabled: false, updatedBy: "ops" } },
      { status: "STOPPED", healthy: true, reason: "disabled by configuration" },
    ],
    [
      "missing and stopped by an operator: STOPPED, healthy, naming who",
      { schedule: MISSING, setting: { enabled: false, updatedBy: "alice" } },
      { status: "STOPPED", healthy: true, reason: "stopped by alice" },
    ],
    [
      "missing and stopped by an unnamed operator",
      { schedule: MISSING, setting: { enabled: false, updatedBy: null } },
      { status: "STOPPED", healthy: true, reason: "stopped by an operator" },
    ],
    [
      "missing although enabled (no setting): STOPPED, unhealthy",
      { schedule: MISSING },
      {
        status: "STOPPED",
        healthy: false,
        reason: "the schedule does not exist (no worker has created it)",
      },
    ],
    [
      "missing although started by an operator: STOPPED, unhealthy",
      { schedule: MISSING, setting: { enabled: true, updatedBy: "alice" } },
      {
        status: "STOPPED",
        healthy: false,
        reason: "the schedule does not exist (no worker has created it)",
      },
    ],

    // Paused: the operator's choice wins over every failure rule
    [
      "paused with a note: PAUSED, healthy, the note as reason",
      { live: { paused: true, note: "maintenance" } },
      { status: "PAUSED", healthy: true, reason: "maintenance" },
    ],
    [
      "paused without a note",
      { live: { paused: true, note: "" } },
      { status: "PAUSED", healthy: true, reason: "paused" },
    ],
    [
      "paused wins over a stuck run and failing runs",
      { live: { paused: true, note: "hold" }, stuck: STUCK, runs: THREE_FAILED },
      { status: "PAUSED", healthy: true, reason: "hold" },
    ],
    [
      "paused wins over no worker polling",
      { live: { paused: true, note: "hold" }, pollers: NO_POLLERS },
      { status: "PAUSED", healthy: true, reason: "hold" },
    ],
    [
      "paused with spec drift and skipped runs appends both notes",
      { live: { paused: true, note: "hold", drift: ["spec"], skippedOverlap: 2 } },
      {
        status: "PAUSED",
        healthy: true,
        reason: `hold; ${SPEC_NOTE}; Temporal: 2 run(s) skipped by the overlap policy`,
      },
    ],

    // Stuck run
    [
      "a stuck run: ERROR naming the workflow, attempts and cause",
      { stuck: STUCK },
      error(
        "run wf-1 is stuck: its workflow task failed 4 times (NON_DETERMINISM: history mismatch)",
      ),
    ],
    [
      "a stuck run wins over failing runs",
      { stuck: STUCK, runs: THREE_FAILED },
      error(
        "run wf-1 is stuck: its workflow task failed 4 times (NON_DETERMINISM: history mismatch)",
      ),
    ],

    // Consecutive failures
    [
      "errorThreshold failed runs in a row: ERROR with the latest error",
      { runs: THREE_FAILED },
      error("the last 3 runs failed: boom"),
    ],
    [
      "failed runs without an error message name the outcome",
      { runs: [run("TIMED_OUT"), run("FAILED"), run("FAILED")] },
      error("the last 3 runs failed: TIMED_OUT"),
    ],
    [
      "fewer failures than the threshold stay RUNNING",
      { runs: [run("FAILED"), run("FAILED")] },
      { status: "RUNNING", healthy: true },
    ],
    [
      "a success among the last runs breaks the streak",
      { runs: [run("FAILED"), run("FAILED"), run("SUCCEEDED")] },
      { status: "RUNNING", healthy: true },
    ],
    [
      "a PARTIAL among the last runs counts as a success for the failure streak",
      { runs: [run("FAILED"), run("PARTIAL"), run("FAILED")] },
      { status: "RUNNING", healthy: true },
    ],
    [
      "failing runs with spec drift: the notes follow the reason",
      { runs: THREE_FAILED, live: { drift: ["spec"] } },
      error(`the last 3 runs failed: boom; ${SPEC_NOTE}`),
    ],

    // PARTIAL runs
    [
      "partialThreshold PARTIAL runs in a row: ERROR",
      { runs: [run("PARTIAL", { error: "2 units failed" }), run("PARTIAL"), run("PARTIAL")] },
      error("the last 3 runs were PARTIAL: 2 units failed"),
    ],
    [
      "PARTIAL runs without an error message",
      { runs: [run("PARTIAL"), run("PARTIAL"), run("PARTIAL")] },
      error("the last 3 runs were PARTIAL:"),
    ],
    [
      "more than failedCompaniesPercent of companies failing in the last run: ERROR",
      { runs: [run("PARTIAL", { error: "csv", counts: { failed: 6, companies: 10 } })] },
      error("6 of 10 companies failed in the last run (more than 50%): csv"),
    ],
    [
      "exactly failedCompaniesPercent failing is RUNNING with a note",
      { runs: [run("PARTIAL", { error: "csv", counts: { failed: 5, companies: 10 } })] },
      {
        status: "RUNNING",
        healthy: true,
        reason: "last run PARTIAL (5 of 10 companies failed): csv",
      },
    ],
    [
      "a PARTIAL last run without company counts: RUNNING with a note",
      { runs: [run("PARTIAL", { error: "1 batch failed" })] },
      { status: "RUNNING", healthy: true, reason: "last run PARTIAL: 1 batch failed" },
    ],
    [
      "a PARTIAL last run over zero companies has no share",
      { runs: [run("PARTIAL", { counts: { failed: 0, companies: 0 } })] },
      { status: "RUNNING", healthy: true, reason: "last run PARTIAL:" },
    ],
    [
      "only the last run's PARTIAL makes a note",
      { runs: [run("SUCCEEDED"), run("PARTIAL", { error: "old" })] },
      { status: "RUNNING", healthy: true },
    ],

    // Workers
    [
      "no worker polling for longer than workerStaleMs: ERROR",
      { pollers: NO_POLLERS },
      error("no worker has polled task queue q for 60 s"),
    ],
    [
      "a worker last seen before workerStaleMs counts as none",
      { pollers: [{ identity: "w", lastAccessTime: ago(61).toISOString() }] },
      error("no worker has polled task queue q for 60 s"),
    ],
    [
      "a poller without an access time counts as none",
      { pollers: [{ identity: "w", lastAccessTime: null }] },
      error("no worker has polled task queue q for 60 s"),
    ],
    [
      "one fresh poller among stale ones is enough",
      {
        pollers: [
          { identity: "old", lastAccessTime: ago(600).toISOString() },
          { identity: "new", lastAccessTime: ago(60).toISOString() },
        ],
      },
      { status: "RUNNING", healthy: true },
    ],
    [
      "no worker yet on a schedule created within workerStaleMs: STARTING",
      { pollers: NO_POLLERS, live: { createdAt: ago(10) }, runs: [], lastSuccess: null },
      { status: "STARTING", healthy: true, reason: "waiting for a worker to poll task queue q" },
    ],
    [
      "no worker yet since a recent resume: STARTING",
      { pollers: NO_POLLERS, unpausedAt: ago(10) },
      { status: "STARTING", healthy: true, reason: "waiting for a worker to poll task queue q" },
    ],
    [
      "a resume older than the schedule itself does not count",
      { pollers: NO_POLLERS, live: { createdAt: ago(30) }, unpausedAt: ago(3_600) },
      { status: "STARTING", healthy: true, reason: "waiting for a worker to poll task queue q" },
    ],
    [
      "no worker polling beats the dead man's switch",
      { pollers: NO_POLLERS, lastSuccess: ago(3_600) },
      error("no worker has polled task queue q for 60 s"),
    ],

    // Dead man's switch
    [
      "no success for deadmanIntervals intervals: ERROR naming since when",
      { lastSuccess: ago(181), runs: [run("FAILED")] },
      error(`no successful run for 3 intervals (since ${ago(181).toISOString()})`),
    ],
    [
      "no success ever, counted from the schedule's creation",
      { lastSuccess: null, runs: [run("FAILED")] },
      error(`no successful run for 3 intervals (since ${ago(86_400).toISOString()})`),
    ],
    [
      "a success within deadmanIntervals intervals is fine",
      { lastSuccess: ago(179), runs: [run("FAILED")] },
      { status: "RUNNING", healthy: true },
    ],
    [
      "the dead man's switch counts from a resume",
      {
        lastSuccess: ago(3_600),
        unpausedAt: ago(60),
        runs: [run("FAILED", { finishedAt: ago(30) })],
      },
      { status: "RUNNING", healthy: true },
    ],
    [
      "without two next fire times there is no interval and no dead man's switch",
      { lastSuccess: ago(86_000), live: { nextActionTimes: [later(30)] } },
      { status: "RUNNING", healthy: true },
    ],

    // STARTING before the first run
    [
      "created, no run yet: STARTING, first run pending with its due time",
      { live: { createdAt: ago(40) }, runs: [], lastSuccess: null },
      {
        status: "STARTING",
        healthy: true,
        reason: `first run pending (due ${later(30).toISOString()}) since the schedule was created`,
      },
    ],
    [
      "created, first run running: STARTING, in progress",
      { live: { createdAt: ago(40), runningActions: 1 }, runs: [], lastSuccess: null },
      {
        status: "STARTING",
        healthy: true,
        reason: "first run in progress since the schedule was created",
      },
    ],
    [
      "created, no next fire time known",
      { live: { createdAt: ago(40), nextActionTimes: [] }, runs: [], lastSuccess: null },
      {
        status: "STARTING",
        healthy: true,
        reason: "first run pending since the schedule was created",
      },
    ],
    [
      "resumed, the last run older than the resume: STARTING since the resume",
      {
        unpausedAt: ago(20),
        runs: [run("SUCCEEDED", { finishedAt: ago(120) })],
        lastSuccess: ago(120),
      },
      {
        status: "STARTING",
        healthy: true,
        reason: `first run pending (due ${later(30).toISOString()}) since the resume`,
      },
    ],
    [
      "a run that never recorded its finish does not count as run",
      {
        live: { createdAt: ago(40) },
        runs: [run("FAILED", { finishedAt: null })],
        lastSuccess: null,
      },
      {
        status: "STARTING",
        healthy: true,
        reason: `first run pending (due ${later(30).toISOString()}) since the schedule was created`,
      },
    ],

    // Notes beside RUNNING
    [
      "skipped and missed runs are noted on RUNNING",
      { live: { skippedOverlap: 2, missedCatchupWindow: 1 } },
      {
        status: "RUNNING",
        healthy: true,
        reason:
          "Temporal: 2 run(s) skipped by the overlap policy, 1 run(s) missed outside the catch-up window",
      },
    ],
    [
      "missed runs alone",
      { live: { missedCatchupWindow: 4 } },
      {
        status: "RUNNING",
        healthy: true,
        reason: "Temporal: 4 run(s) missed outside the catch-up window",
      },
    ],
    [
      "spec drift is noted on RUNNING; other drift is not",
      { live: { drift: ["spec", "policies"] } },
      { status: "RUNNING", healthy: true, reason: SPEC_NOTE },
    ],
    [
      "drift other than the spec makes no note",
      { live: { drift: ["policies"] } },
      { status: "RUNNING", healthy: true },
    ],
    [
      "a PARTIAL note comes before the drift and skipped notes",
      { runs: [run("PARTIAL", { error: "e" })], live: { drift: ["spec"], skippedOverlap: 1 } },
      {
        status: "RUNNING",
        healthy: true,
        reason: `last run PARTIAL: e; ${SPEC_NOTE}; Temporal: 1 run(s) skipped by the overlap policy`,
      },
    ],

    // Backlog lag objective (after every other rule)
    [
      "a RUNNING scheduler past its lag objective: ERROR with the backlog reason alone",
      { backlog: { waiting: 7, oldestAgeSeconds: 901 }, live: { drift: ["spec"] } },
      error("backlog lag: 7 item(s) waiting, the oldest for 901 s (objective 900 s)"),
    ],
    [
      "a STARTING scheduler past its lag objective: ERROR",
      { backlog: { waiting: 1, oldestAgeSeconds: 1000 }, pollers: NO_POLLERS, unpausedAt: ago(10) },
      error("backlog lag: 1 item(s) waiting, the oldest for 1000 s (objective 900 s)"),
    ],
    [
      "a PAUSED scheduler keeps its state past the lag objective",
      { backlog: { waiting: 1, oldestAgeSeconds: 1000 }, live: { paused: true, note: "hold" } },
      { status: "PAUSED", healthy: true, reason: "hold" },
    ],
    [
      "a STOPPED scheduler keeps its state past the lag objective",
      { backlog: { waiting: 1, oldestAgeSeconds: 1000 }, schedule: MISSING, enabled: false },
      { status: "STOPPED", healthy: true, reason: "disabled by configuration" },
    ],
    [
      "within the lag objective: no change",
      { backlog: { waiting: 9, oldestAgeSeconds: 900 } },
      { status: "RUNNING", healthy: true },
    ],
    [
      "nothing waiting: no breach however old the marker",
      { backlog: { waiting: 0, oldestAgeSeconds: 99_999 } },
      { status: "RUNNING", healthy: true },
    ],
  ])("%s", (_name, patch, expected) => {
    const thresholds = patch.backlog
      ? { ...THRESHOLDS, backlogLagObjectiveMs: 900_000 }
      : THRESHOLDS;
    expect(deriveState(snapshot(patch), thresholds, NOW)).toEqual(expected);
  });

  it.each([
    ["no objective (0)", 0],
    ["no objective given", undefined],
  ])("a backlog without a lag objective never breaches: %s", (_name, objective) => {
    const thresholds = {
      ...THRESHOLDS,
      ...(objective === undefined ? {} : { backlogLagObjectiveMs: objective }),
    };
    expect(
      deriveState(snapshot({ backlog: { waiting: 5, oldestAgeSeconds: 99_999 } }), thresholds, NOW),
    ).toEqual({ status: "RUNNING", healthy: true });
  });

  it("thresholds decide the counts: errorThreshold 1 turns one failure into ERROR", () => {
    expect(
      deriveState(
        snapshot({ runs: [run("FAILED", { error: "x" })] }),
        { ...THRESHOLDS, errorThreshold: 1 },
        NOW,
      ),
    ).toEqual(error("the last 1 runs failed: x"));
  });

  it("withBacklogRule keeps the other fields of a status", () => {
    const status = {
      status: "RUNNING" as const,
      healthy: true,
      id: "csv-import",
      backlog: { waiting: 1 },
    };
    expect(withBacklogRule(status, { waiting: 1, oldestAgeSeconds: 20 }, 10_000)).toEqual({
      ...status,
      status: "ERROR",
      healthy: false,
      reason: "backlog lag: 1 item(s) waiting, the oldest for 20 s (objective 10 s)",
    });
  });
});

describe("healthReport over derived states", () => {
  const status = (id: string, state: DerivedState, critical = true): SchedulerStatus => ({
    id,
    scheduleId: `livedash-${id}`,
    lastSuccess: null,
    pollers: [],
    critical,
    ...state,
  });
  const RUNNING: DerivedState = { status: "RUNNING", healthy: true };
  const FAILING = error("the last 3 runs failed: boom");

  it.each<
    [
      string,
      SchedulerStatus[],
      { scheduleId: string; reason: string }[],
      [boolean, string, number, number],
    ]
  >([
    [
      "all RUNNING: healthy",
      [status("a", RUNNING), status("b", RUNNING)],
      [],
      [true, "healthy", 2, 0],
    ],
    [
      "a critical ERROR: unhealthy",
      [status("a", RUNNING), status("b", FAILING)],
      [],
      [false, "unhealthy", 1, 1],
    ],
    [
      "a non-critical ERROR: only degraded",
      [status("a", RUNNING), status("b", FAILING, false)],
      [],
      [true, "degraded", 1, 1],
    ],
    [
      "PAUSED is healthy but degraded",
      [status("a", RUNNING), status("b", { status: "PAUSED", healthy: true, reason: "hold" })],
      [],
      [true, "degraded", 1, 0],
    ],
    [
      "STARTING is healthy but degraded",
      [status("a", { status: "STARTING", healthy: true, reason: "waiting" })],
      [],
      [true, "degraded", 0, 0],
    ],
    [
      "a missing schedule (unhealthy STOPPED) on a critical scheduler: unhealthy",
      [status("a", { status: "STOPPED", healthy: false, reason: "missing" })],
      [],
      [false, "unhealthy", 0, 1],
    ],
    [
      "orphaned schedules degrade an otherwise healthy answer",
      [status("a", RUNNING)],
      [{ scheduleId: "livedash-old", reason: "no configuration owns it" }],
      [true, "degraded", 1, 0],
    ],
  ])("%s", (_name, statuses, orphans, [healthy, overall, running, errors]) => {
    const report = healthReport(statuses, NOW, orphans);
    expect(report.healthy).toBe(healthy);
    expect(report.status).toBe(overall);
    expect(report.schedulers).toEqual({ total: statuses.length, running, errors });
    expect(report.timestamp).toBe(NOW.toISOString());
    for (const s of statuses) {
      expect(report.details[s.id]).toEqual({
        status: s.status,
        healthy: s.healthy,
        lastSuccess: null,
        ...(s.reason ? { reason: s.reason } : {}),
      });
    }
    expect(report.orphans).toEqual(orphans.length > 0 ? orphans : undefined);
  });
});

describe("one definition per fact", () => {
  it("the run outcomes are the Prisma enum's values", () => {
    expect([...RUN_OUTCOMES].sort()).toEqual(Object.values(SchedulerRunOutcome).sort());
    expect(FINISHED_RUN_OUTCOMES).toEqual(RUN_OUTCOMES.filter((o) => o !== "RUNNING"));
    expect(SUCCESSFUL_RUN_OUTCOMES).toEqual(["SUCCEEDED", "PARTIAL"]);
  });

  it("the scheduler states", () => {
    expect(SCHEDULER_STATES).toEqual(["STOPPED", "STARTING", "RUNNING", "PAUSED", "ERROR"]);
  });

  it("the rules stay pure: scheduler-state.ts loads nothing at run time but domain/", () => {
    const text = readFileSync(join(PROJECT_ROOT, "control-plane/scheduler-state.ts"), "utf8");
    const runtime = [...text.matchAll(/^import (?!type )[^;]*?from "([^"]+)"/gm)].map((m) => m[1]);
    expect(runtime.every((spec) => spec?.startsWith("../domain/"))).toBe(true);
    expect(text).not.toMatch(/@temporalio|prisma|node:/);
  });
});
