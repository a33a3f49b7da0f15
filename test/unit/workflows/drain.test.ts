import { ApplicationFailure } from "@temporalio/common";
import { describe, expect, it } from "vitest";
import type {
  CompanyImportResult,
  CompanyRef,
  ListCompaniesInput,
} from "../../../activities/csv-import.ts";
import type { RunFinish, RunProgress, RunStart } from "../../../activities/run-records.ts";
import { SOURCE_HOST_BUSY } from "../../../domain/failure-types.ts";
import type { CsvImportRunCounts, CsvImportWorkflowInput } from "../../../workflows/csv-import.ts";
import type { RunSummary } from "../../../workflows/run-record.ts";
import { mockedActivityRuns } from "../../support/mocked-run.ts";

/**
 * The draining model of a scheduled run, with the activities mocked: the workflow code is the
 * production bundle, run by a real worker against the test run's Temporal dev server.
 */
// Concurrent: each test runs its workflow on a task queue of its own, and most of it is waiting.
describe.concurrent("a draining run (csv-import workflow, mocked activities)", () => {
  const runs = mockedActivityRuns("drain-test");

  /** Companies c-000.., an import that takes `delayMs`, and a record of what the run did. */
  function mockPipeline(
    companies: number,
    options: { delayMs?: number; busyTimes?: Record<string, number> } = {},
  ) {
    const all: CompanyRef[] = Array.from({ length: companies }, (_, i) => ({
      id: `c-${String(i).padStart(3, "0")}`,
      name: `Company ${i}`,
    }));
    const seen = {
      imported: [] as string[],
      busyAttempts: 0,
      inFlight: 0,
      maxInFlight: 0,
      /** In-flight imports at the moment each page was listed: > 0 means no page barrier. */
      inFlightAtListing: [] as number[],
      started: [] as RunStart[],
      progress: [] as RunProgress[],
      finished: [] as RunFinish[],
    };
    const busy = { ...(options.busyTimes ?? {}) };
    const activities = {
      async recordRunStarted(run: RunStart) {
        seen.started.push(run);
      },
      async recordRunProgress(run: RunProgress) {
        seen.progress.push(run);
      },
      async recordRunFinished(run: RunFinish) {
        seen.finished.push(run);
      },
      async countCsvImportCompanies(): Promise<number> {
        return all.length;
      },
      async listCsvImportCompanies(input: ListCompaniesInput): Promise<CompanyRef[]> {
        seen.inFlightAtListing.push(seen.inFlight);
        return all.filter((c) => !input.afterId || c.id > input.afterId).slice(0, input.limit);
      },
      async importCompanyCsv(companyId: string): Promise<CompanyImportResult> {
        if ((busy[companyId] ?? 0) > 0) {
          busy[companyId] = (busy[companyId] ?? 0) - 1;
          seen.busyAttempts += 1;
          throw ApplicationFailure.create({ type: SOURCE_HOST_BUSY, message: "host busy" });
        }
        seen.inFlight += 1;
        seen.maxInFlight = Math.max(seen.maxInFlight, seen.inFlight);
        await new Promise((resolve) => setTimeout(resolve, options.delayMs ?? 20));
        seen.inFlight -= 1;
        seen.imported.push(companyId);
        return {
          companyId,
          companyName: companyId,
          status: "imported",
          durationMs: 1,
          rowsRead: 3,
          inserted: 2,
          duplicates: 1,
          rejected: 0,
          rejections: [],
        };
      },
    };
    return { activities, seen };
  }

  async function runCsvImport(
    activities: object,
    limits: Partial<CsvImportWorkflowInput>,
  ): Promise<{ result: RunSummary<CsvImportRunCounts>; workflowId: string }> {
    const input: CsvImportWorkflowInput = {
      schedulerId: "csv-import",
      scheduleId: "drain-test",
      batchSize: 4,
      fetchTimeoutMs: 10_000,
      heartbeatTimeoutMs: 10_000,
      deadlineMs: 120_000,
      window: 6,
      ...limits,
    };
    return runs.run<RunSummary<CsvImportRunCounts>>("csvImportWorkflow", input, activities, {
      maxConcurrentActivityTaskExecutions: 100,
    });
  }

  it("drains a backlog of many pages in one run, with a sliding window and no page barrier", async () => {
    const { activities, seen } = mockPipeline(25, { delayMs: 400 });
    const { result } = await runCsvImport(activities, { batchSize: 4, window: 6 });

    expect(result.outcome).toBe("SUCCEEDED");
    expect(result.counts).toMatchObject({
      companies: 25,
      imported: 25,
      inserted: 50,
      duplicates: 25,
    });
    expect(new Set(seen.imported).size).toBe(25);
    expect(seen.imported).toHaveLength(25);
    // The window is filled, never exceeded, and pages are listed while imports still run.
    expect(seen.maxInFlight).toBe(6);
    expect(seen.inFlightAtListing.slice(1).some((n) => n > 0)).toBe(true);
    expect(seen.started).toHaveLength(1);
    expect(seen.finished).toEqual([
      expect.objectContaining({ outcome: "SUCCEEDED", executions: 1 }),
    ]);
  });

  it("continues as new before its history budget, keeping one run record with correct totals", async () => {
    const { activities, seen } = mockPipeline(60, { delayMs: 5 });
    const { result, workflowId } = await runCsvImport(activities, {
      batchSize: 5,
      window: 4,
      historyBudget: 300,
    });

    expect(result.outcome).toBe("SUCCEEDED");
    expect(result.counts).toMatchObject({ companies: 60, imported: 60, inserted: 120 });
    expect(new Set(seen.imported).size).toBe(60);
    expect(seen.imported).toHaveLength(60);
    // One run: started once, progress recorded at each hand-over, finished once by the last.
    expect(seen.started).toHaveLength(1);
    expect(seen.progress.length).toBeGreaterThanOrEqual(1);
    const executions = seen.progress.length + 1;
    expect(seen.finished).toEqual([expect.objectContaining({ executions })]);
    for (const p of [...seen.progress, ...seen.finished]) {
      expect(p).toMatchObject({ workflowId, runId: seen.started[0]?.runId });
    }
    // Totals only grow from one execution to the next.
    const companies = seen.progress.map((p) => (p.counts as CsvImportRunCounts).companies);
    expect(companies).toEqual([...companies].sort((a, b) => a - b));

    // Every execution's history stayed within the budget.
    for await (const execution of runs.client().workflow.list({
      query: `WorkflowId = '${workflowId}'`,
    })) {
      expect(execution.historyLength).toBeLessThanOrEqual(300);
    }
  });

  it("stops taking new work at the run deadline and says so", async () => {
    // 40 imports of 600 ms, two at a time, need 12 s: a 5 s deadline stops the run part-way,
    // with room for a slow first workflow task on a loaded machine.
    const { activities, seen } = mockPipeline(40, { delayMs: 600 });
    const { result } = await runCsvImport(activities, {
      batchSize: 2,
      window: 2,
      deadlineMs: 5_000,
    });

    expect(result.outcome).toBe("PARTIAL");
    expect(result.error).toMatch(/run deadline reached before every company was visited/);
    expect(result.counts.companies).toBeGreaterThan(0);
    expect(result.counts.companies).toBeLessThan(40);
    expect(seen.imported).toHaveLength(result.counts.companies);
  });

  it("tries an item whose source host was busy again later in the run, without failing it", async () => {
    const { activities, seen } = mockPipeline(6, { busyTimes: { "c-002": 2 } });
    const { result } = await runCsvImport(activities, { batchSize: 3, window: 3 });

    expect(result.outcome).toBe("SUCCEEDED");
    expect(result.counts).toMatchObject({ companies: 6, imported: 6, failed: 0 });
    expect(seen.busyAttempts).toBe(2);
    expect(seen.imported).toContain("c-002");
  }, 60_000);
});
