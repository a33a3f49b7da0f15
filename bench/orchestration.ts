import { randomBytes } from "node:crypto";
import { loadConfig } from "../adapters/config.ts";
import { createDatabase } from "../adapters/db/client.ts";
import { openSource } from "../adapters/http-source.ts";
import { readSessionCsv, type SessionImportRow } from "../domain/csv-rows.ts";
import { qualifiedName } from "../domain/scheduler-id.ts";
import { startCsvSource } from "./child-services.ts";
import { connectClient, percentile, triggerAndTime } from "./scheduler-runs.ts";
import { benchEnv } from "./services.ts";
import { type BenchContext, startBenchWorkers } from "./support.ts";

const RUNS = 10;
const ROWS = 10;
const RUN_TIMEOUT_MS = 60_000;

/**
 * Trigger-to-recorded-outcome latency of a run with nothing to do and of a run importing one
 * company's ten rows, against the activity's own work done directly (fetch, readSessionCsv,
 * createMany), with no Temporal in between.
 */
export async function orchestrationBench(ctx: BenchContext): Promise<void> {
  const source = await startCsvSource();
  const url = await ctx.services.freshDatabase("orchestration");
  const db = createDatabase(url, { poolSize: 5 });
  const region = `o${randomBytes(3).toString("hex")}`;
  const scheduleId = qualifiedName("csv-import", region);
  const config = loadConfig(benchEnv(url, ctx.services.temporalAddress, region));
  const workers = await startBenchWorkers(ctx, config, db, ["csv-import"]);
  const temporal = await connectClient(ctx.services.temporalAddress);
  try {
    // Warm-up: the first run pays for worker caches and connection set-up.
    await triggerAndTime(temporal.client, db, scheduleId, RUN_TIMEOUT_MS);

    const empty: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      empty.push((await triggerAndTime(temporal.client, db, scheduleId, RUN_TIMEOUT_MS)).ms);
    }

    const csvUrl = source.urlFor("o", ROWS);
    const company = await db.company.create({ data: { name: "Orchestration", csvUrl } });
    const one: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await db.sessionImport.deleteMany();
      const run = await triggerAndTime(temporal.client, db, scheduleId, RUN_TIMEOUT_MS);
      if (run.outcome !== "SUCCEEDED") throw new Error(`one-company run ${run.outcome}`);
      one.push(run.ms);
    }
    if ((await db.sessionImport.count()) !== ROWS) throw new Error("one-company rows missing");

    // The activity's work, done directly the same way (no Temporal).
    const direct: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await db.sessionImport.deleteMany();
      const started = performance.now();
      const found = await db.company.findUnique({ where: { id: company.id } });
      if (!found) throw new Error("company missing");
      const body = await openSource({
        url: found.csvUrl,
        timeoutMs: 10_000,
        maxBytes: config.csvImport.maxBytes,
        allowPrivateNetworks: config.fetchAllowPrivateNetworks,
        accept: "text/csv, text/plain;q=0.9, */*;q=0.1",
      });
      const rows: SessionImportRow[] = [];
      for await (const event of readSessionCsv(body.body)) {
        if (event.kind === "row") rows.push(event.row);
      }
      await db.sessionImport.createMany({
        data: rows.map((row) => ({ ...row, companyId: company.id })),
        skipDuplicates: true,
      });
      direct.push(performance.now() - started);
    }

    const p50 = (values: number[]) => percentile(values, 50);
    const p95 = (values: number[]) => percentile(values, 95);
    ctx.log(
      `  empty run p50 ${p50(empty)} p95 ${p95(empty)} ms; one company p50 ${p50(one)} p95 ${p95(one)} ms; direct p50 ${p50(direct).toFixed(1)} p95 ${p95(direct).toFixed(1)} ms`,
    );
    const directP50 = p50(direct);
    for (const [name, values] of [
      ["empty run (no companies)", empty],
      [`one company, ${ROWS} rows`, one],
    ] as const) {
      for (const [label, value] of [
        ["p50", p50(values)],
        ["p95", p95(values)],
      ] as const) {
        ctx.record({
          bench: "orchestration",
          metric: `${name} ${label}`,
          value,
          unit: "ms",
          baseline: `direct activity work p50 (${ROWS} rows)`,
          baselineValue: directP50,
          ratio: value / directP50,
          note: `${RUNS} runs, trigger to SchedulerRun.finishedAt`,
        });
      }
    }
    ctx.record({
      bench: "orchestration",
      metric: "overhead per run (empty run p50)",
      value: p50(empty),
      unit: "ms",
      baseline: "direct activity work p50",
      baselineValue: directP50,
      ratio: p50(empty) / directP50,
    });
    const perCompany = p50(one) - p50(empty) - directP50;
    ctx.record({
      bench: "orchestration",
      metric: "overhead per company (one p50 - empty p50 - direct p50)",
      value: perCompany,
      unit: "ms",
      baseline: "direct activity work p50",
      baselineValue: directP50,
      ratio: perCompany / directP50,
    });
  } finally {
    await temporal.close();
    await workers.shutdown();
    await db.$disconnect();
    await source.close();
  }
}
