/**
 * Starts the dev services the way `npm run dev` does (scripts/services/dev-services.ts) and
 * prints one JSON line when they are up; the dev-recovery test kills it with SIGKILL.
 * Arguments: data folder, Temporal port, Temporal UI port, PostgreSQL port.
 */
import { runMain } from "../../adapters/process-lifecycle.ts";
import { startDevPostgres, startDevTemporal } from "../../scripts/services/dev-services.ts";
import { ensureTemporalCli } from "../../scripts/services/temporal.ts";

runMain(async () => {
  const [dataDir = "", temporalPort, uiPort, pgPort] = process.argv.slice(2);
  const log = (message: string) => process.stdout.write(`log: ${message}\n`);
  const temporal = await startDevTemporal({
    cli: await ensureTemporalCli(),
    dataDir,
    port: Number(temporalPort),
    uiPort: Number(uiPort),
    log,
  });
  const pg = await startDevPostgres({ dataDir, port: Number(pgPort), log });
  process.stdout.write(
    `${JSON.stringify({ ready: true, temporalPid: temporal.process.pid, adminUrl: pg.adminUrl })}\n`,
  );
  // Stay up until killed.
  setInterval(() => undefined, 60_000);
});
