import type { FC, PropsWithChildren } from "hono/jsx";

/**
 * The dashboard's frame and small pages: the style sheet, the page layout, the sign-in form and
 * the one-message pages (refused, too large, invalid), and the time formats every part shares.
 * Server-rendered Hono JSX, no script, no external asset; Hono escapes every value.
 */

/**
 * Inline style sheet. Hono escapes the text of a style element like any other text, so it must
 * stay free of the characters HTML escaping changes (checked below).
 */
const CSS = `
:root {
  color-scheme: light dark;
  --bg: #ffffff; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --card: #f6f8fa;
  --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --off: #6e7781; --info: #0969da;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --line: #3d444d; --card: #151b23;
    --ok: #238636; --warn: #9e6a03; --bad: #da3633; --off: #656c76; --info: #1f6feb;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, Segoe UI, Roboto, sans-serif;
}
header {
  display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center;
  justify-content: space-between; padding: 12px 16px; border-bottom: 1px solid var(--line);
}
header .meta { display: flex; flex-wrap: wrap; gap: 8px 12px; align-items: center; }
main { padding: 0 16px 32px; max-width: 1500px; margin: 0 auto; }
h1 { font-size: 18px; margin: 0; }
h2 { font-size: 16px; margin: 24px 0 8px; }
a { color: var(--info); }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.muted { color: var(--muted); font-size: 12px; }
.wrap { overflow-wrap: anywhere; min-width: 0; }
.flash { margin: 16px 0 0; padding: 8px 12px; border-radius: 6px; border: 1px solid var(--line); }
.flash.ok { border-color: var(--ok); }
.flash.error { border-color: var(--bad); }
.banner { margin: 16px 0 0; padding: 8px 12px; border-radius: 6px; border: 1px solid var(--warn); }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; vertical-align: top; padding: 8px; border-bottom: 1px solid var(--line); }
th { font-size: 12px; color: var(--muted); font-weight: 600; white-space: nowrap; }
.badge {
  display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px;
  font-weight: 600; color: #ffffff; background: var(--off); white-space: nowrap;
}
.dot {
  width: 18px; height: 18px; border-radius: 4px; color: #ffffff; font-size: 11px;
  font-weight: 700; display: flex; align-items: center; justify-content: center;
  background: var(--off);
}
.s-RUNNING, .o-SUCCEEDED { background: var(--ok); }
.s-PAUSED, .o-PARTIAL { background: var(--warn); }
.s-ERROR, .o-FAILED { background: var(--bad); }
.s-STARTING, .o-RUNNING { background: var(--info); }
.recent { display: flex; gap: 4px; list-style: none; margin: 0; padding: 0; }
.actions { display: flex; flex-direction: column; gap: 6px; min-width: 14em; }
.actions form { display: flex; flex-wrap: wrap; gap: 6px; margin: 0; }
.actions input[type=text] { flex: 1 1 8em; min-width: 0; }
input, button {
  font: inherit; padding: 4px 10px; border-radius: 6px; border: 1px solid var(--line);
  background: var(--bg); color: var(--fg);
}
button { cursor: pointer; background: var(--card); font-weight: 600; }
button.primary { background: var(--info); border-color: var(--info); color: #ffffff; }
.counts { display: grid; grid-template-columns: repeat(auto-fit, minmax(15em, 1fr)); gap: 12px; }
.counts section { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; background: var(--card); }
.counts h3 { font-size: 13px; margin: 0 0 4px; }
.counts dl { display: grid; grid-template-columns: 1fr auto; gap: 2px 12px; margin: 0; }
.counts dt { color: var(--muted); overflow-wrap: anywhere; }
.counts dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; }
.sr {
  position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
  white-space: nowrap;
}
.login { max-width: 24em; margin: 48px auto; padding: 16px; }
.login form { display: flex; flex-direction: column; gap: 8px; }
@media (max-width: 700px) {
  table.schedulers, table.schedulers tbody, table.schedulers tr, table.schedulers td { display: block; width: 100%; }
  table.schedulers thead { display: none; }
  table.schedulers tr {
    border: 1px solid var(--line); border-radius: 8px; margin: 0 0 12px; padding: 4px 12px;
    background: var(--card);
  }
  table.schedulers td {
    display: grid; grid-template-columns: 7em minmax(0, 1fr); gap: 8px; padding: 6px 0;
    border: 0;
  }
  table.schedulers td::before {
    content: attr(data-label); color: var(--muted); font-size: 12px; font-weight: 600;
  }
  .actions { min-width: 0; }
}
`;
if (/[<>&'"]/.test(CSS)) throw new Error("dashboard CSS must not contain < > & ' or \"");

/** 2026-11-28 10:30:00 UTC */
export function formatTime(iso: string): string {
  return `${iso.slice(0, 19).replace("T", " ")} UTC`;
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return "–";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return minutes < 60 ? `${minutes} min ${seconds} s` : `${(ms / 3_600_000).toFixed(1)} h`;
}

/** "5 min ago", "in 3 h" */
export function relativeTime(iso: string, now: Date): string {
  const diff = new Date(iso).getTime() - now.getTime();
  const abs = Math.abs(diff);
  if (abs < 5_000) return "just now";
  const text =
    abs < 60_000
      ? `${Math.round(abs / 1000)} s`
      : abs < 3_600_000
        ? `${Math.round(abs / 60_000)} min`
        : abs < 172_800_000
          ? `${Math.round(abs / 3_600_000)} h`
          : `${Math.round(abs / 86_400_000)} d`;
  return diff < 0 ? `${text} ago` : `in ${text}`;
}

export const Time: FC<{ iso: string; now: Date }> = ({ iso, now }) => (
  <time datetime={iso} title={formatTime(iso)}>
    {formatTime(iso)} <span class="muted">({relativeTime(iso, now)})</span>
  </time>
);

export const Layout: FC<PropsWithChildren<{ title: string; nonce: string }>> = (props) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="referrer" content="same-origin" />
      <title>{props.title}</title>
      <style nonce={props.nonce}>{CSS}</style>
    </head>
    <body>{props.children}</body>
  </html>
);

export const LoginPage: FC<{ nonce: string; error?: string | undefined }> = ({ nonce, error }) => (
  <Layout title="Sign in · LiveDash schedulers" nonce={nonce}>
    <main class="login">
      <h1>LiveDash schedulers</h1>
      <p class="muted">Sign in with the admin token (ADMIN_API_TOKEN).</p>
      {error ? (
        <p class="flash error" role="alert">
          {error}
        </p>
      ) : null}
      <form method="post" action="/admin/login">
        <label for="token">Admin token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="current-password"
          required
          autofocus
        />
        <button class="primary" type="submit">
          Sign in
        </button>
      </form>
    </main>
  </Layout>
);

export const MessagePage: FC<{ nonce: string; title: string; message: string }> = (props) => (
  <Layout title={`${props.title} · LiveDash schedulers`} nonce={props.nonce}>
    <main class="login">
      <h1>{props.title}</h1>
      <p role="alert">{props.message}</p>
      <p>
        <a href="/admin">Back to the dashboard</a>
      </p>
    </main>
  </Layout>
);
