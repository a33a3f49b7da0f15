import type { Database } from "../../adapters/db/client.ts";
import { DEMO_COMPANIES, type DemoSource } from "./source.ts";

/** Creates the demo companies, or points existing ones at the running demo source. Idempotent. */
export async function seedDemoCompanies(db: Database, source: DemoSource): Promise<number> {
  for (const company of DEMO_COMPANIES) {
    const data = {
      name: company.name,
      region: company.region,
      csvUrl: source.csvUrl(company),
      csvUsername: company.auth?.username ?? null,
      csvPassword: company.auth?.password ?? null,
    };
    const existing = await db.company.findFirst({
      where: { name: company.name },
      select: { id: true },
    });
    if (existing) await db.company.update({ where: { id: existing.id }, data });
    else await db.company.create({ data });
  }
  return DEMO_COMPANIES.length;
}
