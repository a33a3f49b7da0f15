import type { Database } from "../adapters/db/client.ts";
import { companyHealthPage, failingCompanyCounts } from "../adapters/db/company-import-health.ts";
import type { CompanyHealthData } from "./dashboard-companies.tsx";

/** Failing ACTIVE companies shown on the dashboard before pointing at the API. */
const SHOWN = 20;

export async function companyHealthData(db: Database): Promise<CompanyHealthData> {
  const [page, failing] = await Promise.all([
    companyHealthPage(db, { failing: true, status: "ACTIVE", limit: SHOWN }),
    failingCompanyCounts(db),
  ]);
  return { failing, companies: page.companies, more: page.nextCursor !== null };
}
