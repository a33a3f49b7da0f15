import { randomBytes } from "node:crypto";
import type { Database } from "../../adapters/db/client.ts";
import type { WorkerType } from "../../domain/scheduler-id.ts";
import { type OpenAIStandIn, startOpenAIStandIn } from "../../openai-stand-in/server.ts";
import { startTestStack, type TestStack, testDatabase } from "./harness.ts";

/**
 * What the analysis suites share for a whole file: one database and one OpenAI stand-in (batches
 * that finish in about 300 ms); each test then deploys its own region on them.
 */
export interface AnalysisServices {
  db: Database;
  databaseUrl: string;
  openai: OpenAIStandIn;
  stacks: TestStack[];
}

export async function startAnalysisServices(): Promise<AnalysisServices> {
  const openai = await startOpenAIStandIn({
    behaviour: { batch: { validatingMs: 50, inProgressMs: 200, finalizingMs: 50 } },
  });
  const database = await testDatabase();
  return { db: database.db, databaseUrl: database.url, openai, stacks: [] };
}

export async function stopAnalysisServices(services: AnalysisServices | undefined): Promise<void> {
  for (const stack of services?.stacks ?? []) await stack.close();
  await services?.openai.close();
  await services?.db.$disconnect();
}

/**
 * One deployment on the shared services: its own region (schedules, task queues, companies)
 * talking to the stand-in, with workers of `workerTypes` (none: the test starts its own), and
 * one company in that region.
 */
export async function regionDeployment(
  services: AnalysisServices,
  env: Record<string, string>,
  workerTypes?: readonly WorkerType[],
) {
  const region = `r${randomBytes(3).toString("hex")}`;
  const stack = await startTestStack({
    database: { url: services.databaseUrl, db: services.db },
    ...(workerTypes ? { workerTypes } : {}),
    env: {
      REGION: region,
      CSV_COMPANIES_FILTER: `region:${region}`,
      OPENAI_BASE_URL: services.openai.url,
      ...env,
    },
  });
  services.stacks.push(stack);
  const company = await services.db.company.create({
    data: { name: `Company ${region}`, region, csvUrl: "http://127.0.0.1:9/unused.csv" },
  });
  return { stack, company };
}
