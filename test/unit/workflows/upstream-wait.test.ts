import { describe, expect, it } from "vitest";
import type {
  ClaimedImports,
  ClaimPendingImportsInput,
} from "../../../activities/import-claims.ts";
import type { ImportOutcome, ImportRef } from "../../../activities/import-processing.ts";
import type { RunFinish, UpstreamQuery } from "../../../activities/run-records.ts";
import type {
  ImportProcessingCounts,
  ImportProcessingWorkflowInput,
} from "../../../workflows/import-processing.ts";
import type { RunSummary } from "../../../workflows/run-record.ts";
import { mockedActivityRuns } from "../../support/mocked-run.ts";

/**
 * A run whose source is empty while the stage feeding it still works keeps looking, so rows a
 * csv-import run inserts are processed in the same import-processing run instead of the next
 * tick's; it ends once the upstream run is over, or at its deadline. Activities mocked; the
 * production workflow bundle runs on a real worker against the test run's dev server.
 */
// Concurrent: each test runs its workflow on a task queue of its own, and most of it is waiting.
describe.concurrent("an import-processing run while its upstream csv-import run is in progress", () => {
  const runs = mockedActivityRuns("upstream-test");

  /**
   * Upstream is busy for its first `busyAnswers` questions; after the `arriveAfter`-th question,
   * `arriving` imports appear, as if the csv-import run had just inserted them.
   */
  function mockStages(options: { busyAnswers: number; arriveAfter: number; arriving: number }) {
    const pending: ImportRef[] = [];
    const seen = {
      questions: [] as UpstreamQuery[],
      processed: [] as string[],
      finished: [] as RunFinish[],
    };
    const activities = {
      async recordRunStarted() {},
      async recordRunProgress() {},
      async recordRunFinished(run: RunFinish) {
        seen.finished.push(run);
      },
      async releaseImportLeases() {},
      async upstreamRunInProgress(query: UpstreamQuery): Promise<boolean> {
        seen.questions.push(query);
        if (seen.questions.length === options.arriveAfter) {
          for (let i = 0; i < options.arriving; i++) {
            pending.push({ id: `i-${i}`, createdAt: new Date().toISOString() });
          }
        }
        return seen.questions.length <= options.busyAnswers;
      },
      async claimPendingImports(input: ClaimPendingImportsInput): Promise<ClaimedImports> {
        return { imports: pending.splice(0, input.limit) };
      },
      async processImport(importId: string): Promise<ImportOutcome> {
        seen.processed.push(importId);
        return { importId, status: "processed", transcript: "skipped", messages: 0 };
      },
    };
    return { activities, seen };
  }

  async function runImportProcessing(activities: object, deadlineMs: number) {
    const input: ImportProcessingWorkflowInput = {
      schedulerId: "import-processing",
      scheduleId: "upstream-test",
      region: "eu",
      batchSize: 3,
      timeoutMs: 10_000,
      deadlineMs,
      window: 4,
    };
    const started = Date.now();
    const { result } = await runs.run<RunSummary<ImportProcessingCounts>>(
      "importProcessingWorkflow",
      input,
      activities,
    );
    return { result, ms: Date.now() - started };
  }

  it("takes the imports that arrive while upstream runs, then ends when upstream is done", async () => {
    const { activities, seen } = mockStages({ busyAnswers: 2, arriveAfter: 2, arriving: 7 });
    const { result } = await runImportProcessing(activities, 120_000);

    expect(result.outcome).toBe("SUCCEEDED");
    expect(result.counts).toMatchObject({ considered: 7, processed: 7, failed: 0 });
    expect([...seen.processed].sort()).toEqual(
      Array.from({ length: 7 }, (_, i) => `i-${i}`).sort(),
    );
    // It asked about its own region's csv-import, and stopped asking once that was done.
    expect(seen.questions).toHaveLength(3);
    expect(seen.questions[0]).toEqual({ scheduler: "csv-import", region: "eu" });
    expect(seen.finished).toEqual([expect.objectContaining({ outcome: "SUCCEEDED" })]);
  }, 60_000);

  it("does not outlive its deadline however long upstream runs", async () => {
    const { activities, seen } = mockStages({ busyAnswers: 1_000, arriveAfter: 0, arriving: 0 });
    const { result, ms } = await runImportProcessing(activities, 3_000);

    expect(result.outcome).toBe("SUCCEEDED");
    expect(result.counts.considered).toBe(0);
    expect(seen.questions.length).toBeGreaterThanOrEqual(1);
    expect(ms).toBeLessThan(20_000);
  }, 60_000);
});
