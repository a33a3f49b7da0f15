import { randomBytes } from "node:crypto";
import { ScheduleOverlapPolicy } from "@temporalio/client";
import { createDatabase } from "../adapters/db/client.ts";
import { readBacklog } from "../control-plane/backlog.ts";
import { qualifiedName } from "../domain/scheduler-id.ts";
import { startCsvSource } from "./child-services.ts";
import { cpuMeter, describeCpu } from "./cpu-meter.ts";
import { connectClient, deleteSchedules } from "./scheduler-runs.ts";
import { benchEnv } from "./services.ts";
import type { BenchContext } from "./support.ts";
import { startWorkerProcesses, stopWorkerProcesses } from "./worker-processes.ts";

/**
 * A backlog of 200,000 pending imports (BENCH_QUICK: 20,000) over 50 companies, each company's
 * transcripts on a local source host of its own, drained by two import-processing worker processes on the default
 * configuration with the schedule firing every minute. Measures the time until nothing is
 * pending and samples the lag (livedash_backlog_oldest_age_seconds: the oldest pending import's
 * age) every 5 s, which rises while the backlog drains and falls to 0 once it is gone.
 */
const COMPANIES = 50;
const PROCESSES = 2;
const SAMPLE_MS = 5_000;

export async function backlogDrainBench(ctx: BenchContext): Promise<void> {
  const imports = ctx.large ? 200_000 : 20_000;
  const url = await ctx.services.freshDatabase(`drain_${imports}`);
  const db = createDatabase(url, { poolSize: 2 });
  // Each company on a source host of its own, as in production: the per-host fetch limit then
  // throttles each company's transcripts, not the whole backlog.
  const source = await startCsvSource(COMPANIES);
  const hosts = [...source.urls];
  const region = `d${randomBytes(3).toString("hex")}`;
  const scheduleId = qualifiedName("import-processing", region);
  const temporal = await connectClient(ctx.services.temporalAddress);
  const env = benchEnv(url, ctx.services.temporalAddress, region, {
    CSV_COMPANIES_FILTER: `region:${region}`,
    FETCH_ALLOWED_HOSTS: "127.0.0.1",
    IMPORT_PROCESSING_INTERVAL: "* * * * *",
  });
  const workers = await startWorkerProcesses("drain", PROCESSES, env, [
    "--scheduler=import-processing",
  ]);
  try {
    await db.$executeRaw`
      INSERT INTO "Company" (id, name, region, "csvUrl", "updatedAt")
      SELECT md5('drain-company-' || c)::uuid, 'Drain ' || c, ${region}, ${source.url} || '/unused.csv', now()
      FROM generate_series(1, ${COMPANIES}::int) AS c`;
    await db.$executeRaw`
      INSERT INTO "SessionImport" (id, "companyId", "externalSessionId", "startTimeRaw", "endTimeRaw",
                                   "fullTranscriptUrl", "updatedAt")
      SELECT gen_random_uuid(), md5('drain-company-' || (1 + i % ${COMPANIES}))::uuid, 'd-' || i,
             '30.04.2025 11:00:00', '30.04.2025 11:05:00',
             (${hosts}::text[])[1 + i % ${COMPANIES}] || '/t/d-' || i || '.txt', now()
      FROM generate_series(1, ${imports}::int) AS i`;
    const cpu = cpuMeter();
    const started = Date.now();
    await temporal.client.schedule.getHandle(scheduleId).trigger(ScheduleOverlapPolicy.SKIP);

    const samples: { s: number; waiting: number; lagSeconds: number }[] = [];
    const deadline = started + (ctx.large ? 90 : 20) * 60_000;
    for (;;) {
      const backlog = (await readBacklog(db, region))["import-processing"];
      samples.push({
        s: Math.round((Date.now() - started) / 1000),
        waiting: backlog.waiting,
        lagSeconds: backlog.oldestAgeSeconds,
      });
      if (backlog.waiting === 0 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
    }
    const ms = Date.now() - started;
    const cpuUse = describeCpu(cpu());
    const sessions = await db.session.count();
    const runs = await db.schedulerRun.findMany({
      where: { scheduleId },
      orderBy: { startedAt: "asc" },
      select: { outcome: true, executions: true, durationMs: true },
    });
    const peak = Math.max(...samples.map((s) => s.lagSeconds));
    const last = samples.at(-1);
    ctx.log(
      `  ${imports} imports: ${sessions} sessions in ${ms} ms over ${runs.length} run(s) ${JSON.stringify(runs)}; ${cpuUse}; lag samples (s, waiting, lag s): ${samples.map((s) => `${s.s}/${s.waiting}/${s.lagSeconds}`).join(" ")}`,
    );
    ctx.record({
      bench: "backlog-drain",
      metric: `${imports.toLocaleString("en-US")} pending imports drained, ${PROCESSES} processes`,
      value: (sessions * 1000) / ms,
      unit: "imports/s",
      target: "drains (nothing pending)",
      met: last?.waiting === 0 && sessions === imports,
      note: `${(ms / 1000).toFixed(0)} s from first trigger to an empty backlog, ${runs.length} scheduled run(s) at one a minute, ${runs.reduce((n, r) => n + r.executions, 0)} executions; ${cpuUse}`,
    });
    ctx.record({
      bench: "backlog-drain",
      metric: "lag (oldest pending import's age): peak, then at the end",
      value: peak,
      unit: "s",
      target: "rises, then falls to 0",
      met: peak > 0 && last?.lagSeconds === 0,
      note: `sampled every ${SAMPLE_MS / 1000} s: ${samples
        .filter((_, i) => i % Math.max(1, Math.floor(samples.length / 12)) === 0 || _ === last)
        .map((s) => `${s.s}s:${s.lagSeconds}`)
        .join(" ")}`,
    });
  } finally {
    await stopWorkerProcesses(workers);
    await deleteSchedules(temporal.client, [scheduleId]);
    await temporal.close();
    await source.close();
    await db.$disconnect();
  }
}
