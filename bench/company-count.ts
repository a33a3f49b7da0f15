import { randomBytes } from "node:crypto";
import { createDatabase } from "../adapters/db/client.ts";
import { qualifiedName } from "../domain/scheduler-id.ts";
import type { CsvImportRunCounts } from "../workflows/csv-import.ts";
import { startCsvSource } from "./child-services.ts";
import {
  connectClient,
  deleteSchedules,
  executionHistories,
  triggerAndTime,
} from "./scheduler-runs.ts";
import { benchEnv } from "./services.ts";
import type { BenchContext } from "./support.ts";
import { startWorkerProcesses, stopWorkerProcesses } from "./worker-processes.ts";

/**
 * One csv-import run over 1,000, 10,000 and 50,000 companies (BENCH_QUICK: 1,000 and 10,000),
 * each serving a 3-row CSV from one local source host, on the default configuration: one worker
 * process, CSV_IMPORT_MAX_CONCURRENT 5, FETCH_MAX_PER_HOST 4. The run must complete, every
 * execution stay under 10,000 history events, the time per company stay within 1.5x of the
 * 1,000-company figure, and the source never serve more than FETCH_MAX_PER_HOST at once.
 */
const ROWS = 3;
const MAX_PER_HOST = 4;
const HISTORY_LIMIT = 10_000;
const RATIO_TARGET = 1.5;

interface CaseResult {
  companies: number;
  ms: number;
  msPerCompany: number;
  counts: CsvImportRunCounts;
  executions: number;
  maxEvents: number;
  maxAtOnce: number;
}

async function runCase(ctx: BenchContext, companies: number): Promise<CaseResult> {
  const url = await ctx.services.freshDatabase(`companies_${companies}`);
  const db = createDatabase(url, { poolSize: 2 });
  const source = await startCsvSource();
  const region = `c${randomBytes(3).toString("hex")}`;
  const scheduleId = qualifiedName("csv-import", region);
  const temporal = await connectClient(ctx.services.temporalAddress);
  const env = benchEnv(url, ctx.services.temporalAddress, region, {
    CSV_COMPANIES_FILTER: `region:${region}`,
    FETCH_ALLOWED_HOSTS: "127.0.0.1",
    FETCH_MAX_PER_HOST: String(MAX_PER_HOST),
    CSV_IMPORT_TIMEOUT: "300000",
  });
  const workers = await startWorkerProcesses(`companies-${companies}`, 1, env, [
    "--scheduler=csv-import",
  ]);
  try {
    await db.$executeRaw`
      INSERT INTO "Company" (id, name, region, "csvUrl", "updatedAt")
      SELECT gen_random_uuid(), 'Company ' || i, ${region},
             ${source.url} || '/csv/c' || i || '/' || ${ROWS}, now()
      FROM generate_series(1, ${companies}::int) AS i`;
    const run = await triggerAndTime(temporal.client, db, scheduleId, 60 * 60_000);
    const counts = run.counts as CsvImportRunCounts;
    const { executions, maxEvents } = await executionHistories(temporal.client, run.workflowId);
    const { maxActive } = await source.stats();
    const result: CaseResult = {
      companies,
      ms: run.ms,
      msPerCompany: run.ms / companies,
      counts,
      executions,
      maxEvents,
      maxAtOnce: maxActive,
    };
    ctx.log(
      `  ${companies} companies: ${run.outcome} in ${run.ms} ms (${result.msPerCompany.toFixed(2)} ms/company), ${counts.imported} imported, ${counts.failed} failed, ${counts.inserted} rows; ${executions} executions, largest history ${maxEvents} events; source served ${maxActive} at once`,
    );
    return result;
  } finally {
    await stopWorkerProcesses(workers);
    await deleteSchedules(temporal.client, [scheduleId]);
    await temporal.close();
    await source.close();
    await db.$disconnect();
  }
}

export async function companyCountBench(ctx: BenchContext): Promise<void> {
  const sizes = ctx.large ? [1_000, 10_000, 50_000] : [1_000, 10_000];
  const results: CaseResult[] = [];
  for (const size of sizes) results.push(await runCase(ctx, size));
  const base = results[0] as CaseResult;
  for (const r of results) {
    const complete = r.counts.imported === r.companies && r.counts.inserted === r.companies * ROWS;
    ctx.record({
      bench: "company-count",
      metric: `one csv-import run, ${r.companies.toLocaleString("en-US")} companies`,
      value: r.msPerCompany,
      unit: "ms/company",
      baseline: "1,000 companies, same run",
      baselineValue: base.msPerCompany,
      ratio: r.msPerCompany / base.msPerCompany,
      target: `<= ${RATIO_TARGET}x, complete`,
      met: complete && r.msPerCompany <= base.msPerCompany * RATIO_TARGET,
      note: `${r.ms} ms in all; ${r.counts.imported}/${r.companies} imported, ${r.counts.inserted} rows; lower is better`,
    });
    ctx.record({
      bench: "company-count",
      metric: `largest execution history, ${r.companies.toLocaleString("en-US")} companies`,
      value: r.maxEvents,
      unit: "events",
      target: `< ${HISTORY_LIMIT.toLocaleString("en-US")}`,
      met: r.maxEvents < HISTORY_LIMIT,
      note: `${r.executions} executions (continue-as-new)`,
    });
    ctx.record({
      bench: "company-count",
      metric: `fetches at once from one host, ${r.companies.toLocaleString("en-US")} companies`,
      value: r.maxAtOnce,
      unit: "requests",
      target: `<= ${MAX_PER_HOST} (FETCH_MAX_PER_HOST)`,
      met: r.maxAtOnce <= MAX_PER_HOST,
    });
  }
}
