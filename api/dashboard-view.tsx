import type { FC } from "hono/jsx";
import type { SchedulerView } from "../control-plane/admin-service.ts";
import { type CompanyHealthData, CompanyHealthSection } from "./dashboard-companies.tsx";
import type { PipelineCounts } from "./dashboard-data.ts";
import { Layout, Time } from "./dashboard-layout.tsx";
import { SchedulerTable } from "./dashboard-schedulers.tsx";

/**
 * The operator dashboard's page: header, flash message, the scheduler table, the pipeline counts
 * and the company import health. Server-rendered Hono JSX, no script, no external asset; every
 * value is rendered as text or an attribute, which Hono escapes, and nothing here builds raw
 * HTML from data.
 */

export interface Flash {
  kind: "ok" | "error";
  message: string;
}

export interface DashboardProps {
  nonce: string;
  now: Date;
  schedulers: SchedulerView[] | { error: string };
  counts: PipelineCounts | { error: string };
  /** Per-company CSV import health (absent: not shown). */
  companies?: CompanyHealthData | { error: string };
  flash: Flash | undefined;
  /** A token is configured: offer to sign out. */
  authenticated: boolean;
  insecure: boolean;
}

export const DashboardPage: FC<DashboardProps> = (props) => (
  <Layout title="LiveDash schedulers" nonce={props.nonce}>
    <header>
      <h1>LiveDash schedulers</h1>
      <div class="meta">
        <span class="muted">
          Updated <Time iso={props.now.toISOString()} now={props.now} />
        </span>
        <a href="/admin">Refresh</a>
        {props.authenticated ? (
          <form method="post" action="/admin/logout">
            <button type="submit">Sign out</button>
          </form>
        ) : null}
      </div>
    </header>
    <main>
      {props.insecure ? (
        <p class="banner" role="note">
          Insecure development mode: no admin token is configured, so this dashboard and its actions
          are open to anyone who can reach it.
        </p>
      ) : null}
      {props.flash ? (
        <p
          class={`flash ${props.flash.kind}`}
          role={props.flash.kind === "error" ? "alert" : "status"}
        >
          {props.flash.message}
        </p>
      ) : null}
      <h2 id="schedulers">Schedulers</h2>
      {"error" in props.schedulers ? (
        <p class="flash error" role="alert">
          Could not load the schedulers: {props.schedulers.error}
        </p>
      ) : (
        <SchedulerTable schedulers={props.schedulers} now={props.now} />
      )}
      <h2 id="pipeline">Pipeline</h2>
      {"error" in props.counts ? (
        <p class="flash error" role="alert">
          Could not load the pipeline counts: {props.counts.error}
        </p>
      ) : (
        <Counts counts={props.counts} />
      )}
      {props.companies ? (
        <>
          <h2 id="companies">Company imports</h2>
          <CompanyHealthSection data={props.companies} now={props.now} />
        </>
      ) : null}
    </main>
  </Layout>
);

const Counts: FC<{ counts: PipelineCounts }> = ({ counts }) => {
  const inFlight = Object.entries(counts.batchesInFlight);
  const totalInFlight = inFlight.reduce((sum, [, n]) => sum + n, 0);
  return (
    <div class="counts">
      <CountBox
        title="CSV imports"
        rows={[
          ["waiting", counts.imports.PENDING],
          ["processed", counts.imports.PROCESSED],
          ["failed", counts.imports.FAILED],
        ]}
      />
      <CountBox
        title="Sessions by AI analysis"
        rows={Object.entries(counts.analysis).map(([status, n]) => [status.toLowerCase(), n])}
      />
      <CountBox
        title="AI requests"
        rows={Object.entries(counts.requests).map(([status, n]) => [status.toLowerCase(), n])}
      />
      <CountBox
        title="OpenAI batches in flight"
        rows={[
          ["total", totalInFlight],
          ...inFlight.map(([status, n]): [string, number] => [status.toLowerCase(), n]),
        ]}
      />
    </div>
  );
};

const CountBox: FC<{ title: string; rows: [string, number][] }> = ({ title, rows }) => (
  <section aria-label={title}>
    <h3>{title}</h3>
    <dl>
      {rows.map(([label, n]) => (
        <>
          <dt>{label.replaceAll("_", " ")}</dt>
          <dd>{n}</dd>
        </>
      ))}
    </dl>
  </section>
);
