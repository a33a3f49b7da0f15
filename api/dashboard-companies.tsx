import type { FC } from "hono/jsx";
import type { CompanyHealthView, FailingCount } from "../adapters/db/company-import-health.ts";
import { formatTime, relativeTime } from "./dashboard-layout.tsx";

/** The dashboard's company import health: failing counts and the failing companies first. */
export interface CompanyHealthData {
  failing: FailingCount[];
  /** Companies whose latest import failed, a first page of them. */
  companies: CompanyHealthView[];
  more: boolean;
}

const When: FC<{ iso: string | null; now: Date }> = ({ iso, now }) =>
  iso ? (
    <time datetime={iso} title={formatTime(iso)}>
      {relativeTime(iso, now)}
    </time>
  ) : (
    <span class="muted">never</span>
  );

export const CompanyHealthSection: FC<{
  data: CompanyHealthData | { error: string };
  now: Date;
}> = ({ data, now }) => {
  if ("error" in data) {
    return (
      <p class="flash error" role="alert">
        Could not load the company import health: {data.error}
      </p>
    );
  }
  const total = (n: number) =>
    data.failing
      .filter((c) => c.minConsecutiveFailures === n)
      .reduce((sum, c) => sum + c.companies, 0);
  return (
    <section aria-label="Company imports" id="company-health">
      <p>
        ACTIVE companies failing: <strong data-failing="1">{total(1)}</strong> (last import),{" "}
        <strong data-failing="3">{total(3)}</strong> (3+ in a row),{" "}
        <strong data-failing="10">{total(10)}</strong> (10+ in a row).
      </p>
      {data.companies.length === 0 ? (
        <p class="muted">No company's latest CSV import failed.</p>
      ) : (
        <table class="schedulers companies">
          <thead>
            <tr>
              <th scope="col">Company</th>
              <th scope="col">Failures in a row</th>
              <th scope="col">Last success</th>
              <th scope="col">Last error</th>
            </tr>
          </thead>
          <tbody>
            {data.companies.map((c) => (
              <tr data-company={c.companyId}>
                <td data-label="Company">
                  <div class="wrap">{c.name}</div>
                </td>
                <td data-label="Failures in a row">{c.consecutiveFailures}</td>
                <td data-label="Last success">
                  <When iso={c.lastSuccessAt} now={now} />
                </td>
                <td data-label="Last error">
                  <div class="wrap">{(c.lastError ?? "").slice(0, 300)}</div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {data.more ? (
        <p class="muted">
          More in <code>GET /api/admin/companies/health?failing=true</code>.
        </p>
      ) : null}
    </section>
  );
};
