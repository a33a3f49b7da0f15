import { companyHealthPage, failingCompanyCounts } from "../lib/company-import-health.ts";
import type { Database } from "../lib/db.ts";
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
