import { createServer, type Server } from "node:http";

/**
 * A local stand-in for the companies' CSV endpoints and transcript files, for `npm run dev`.
 * Sessions appear over time (one every few minutes per company), so each scheduled import finds
 * something new; ids are deterministic, so re-imports are recognised as duplicates.
 */

export interface DemoCompany {
  slug: string;
  name: string;
  region: string;
  /** Basic auth the endpoint demands, if any (dev-only values). */
  auth?: { username: string; password: string };
  languages: string[];
  countries: string[];
}

export const DEMO_COMPANIES: DemoCompany[] = [
  {
    slug: "acme",
    name: "Acme Logistics",
    region: "eu",
    auth: { username: "acme-export", password: "demo-only-password" },
    languages: ["english", "Dutch"],
    countries: ["NL", "BE", "GB"],
  },
  {
    slug: "globex",
    name: "Globex Retail",
    region: "eu",
    languages: ["german", "english"],
    countries: ["DE", "AT"],
  },
  {
    slug: "initech",
    name: "Initech Software",
    region: "us",
    languages: ["english", "spanish"],
    countries: ["US", "MX"],
  },
];

const TOPICS = [
  {
    category: "Schedule",
    question: "When is my next shift scheduled?",
    answer: "Your next shift is on Monday from 09:00 to 17:00.",
  },
  {
    category: "Vacation",
    question: "How many vacation days do I have left this year?",
    answer: "You have 12 vacation days left.",
  },
  {
    category: "Payroll",
    question: "Why is my salary lower this month?",
    answer: "Overtime from last month is paid next month.",
  },
  {
    category: "Login",
    question: "I cannot log in to the staff portal, can you reset my password?",
    answer: "I have sent you a reset link.",
  },
  {
    category: "Sick leave",
    question: "How do I report sick leave?",
    answer: "Call your manager before 08:00 and fill in the form.",
  },
  {
    category: "Workwear",
    question: "Where can I pick up a new staff pass?",
    answer: "At the front desk, Monday to Friday.",
  },
];

const SESSION_SPACING_MS = 3 * 60_000;

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** `DD.MM.YYYY HH:mm:ss` in UTC, the companies' export format. */
export function formatCsvDate(date: Date): string {
  return `${pad(date.getUTCDate())}.${pad(date.getUTCMonth() + 1)}.${date.getUTCFullYear()} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`;
}

interface DemoSession {
  id: string;
  start: Date;
  end: Date;
  topic: (typeof TOPICS)[number];
  language: string;
  country: string;
  messages: number;
}

function sessionAt(company: DemoCompany, epoch: number, i: number): DemoSession {
  const offset = DEMO_COMPANIES.indexOf(company) * 47_000;
  const start = epoch + offset + i * SESSION_SPACING_MS;
  const topic =
    TOPICS[(i * 7 + company.slug.length) % TOPICS.length] ?? (TOPICS[0] as (typeof TOPICS)[number]);
  return {
    id: `${company.slug}-${String(i).padStart(5, "0")}`,
    start: new Date(start),
    end: new Date(start + 90_000 + (i % 5) * 30_000),
    topic,
    language: company.languages[i % company.languages.length] ?? "english",
    country: company.countries[i % company.countries.length] ?? "NL",
    messages: 2 + (i % 3) * 2,
  };
}

/** The sessions that have started by `now`. */
function sessionsOf(company: DemoCompany, epoch: number, now: number): DemoSession[] {
  const sessions: DemoSession[] = [];
  for (let i = 0; ; i++) {
    const session = sessionAt(company, epoch, i);
    if (session.start.getTime() > now) break;
    sessions.push(session);
  }
  return sessions;
}

function csvOf(company: DemoCompany, sessions: DemoSession[], baseUrl: string): string {
  return sessions
    .map((s, i) =>
      [
        s.id,
        formatCsvDate(s.start),
        formatCsvDate(s.end),
        `10.${i % 250}.${(i * 7) % 250}.${(i * 13) % 250}`,
        s.country,
        s.language,
        String(s.messages),
        i % 4 === 0 ? "unhappy" : "happy",
        i % 6 === 0 ? "yes" : "no",
        "no",
        `${baseUrl}/transcripts/${company.slug}/${s.id}.txt`,
        (1 + (i % 9) * 0.37).toFixed(3),
        String(200 + i * 11),
        ((200 + i * 11) * 0.0000015).toFixed(4),
        s.topic.category,
        `"${s.topic.question.replaceAll('"', '""')}"`,
      ].join(","),
    )
    .join("\n");
}

function transcriptOf(session: DemoSession): string {
  const at = (ms: number) => `[${formatCsvDate(new Date(session.start.getTime() + ms))}]`;
  return [
    `${at(0)} User: Hello`,
    `${at(5_000)} Assistant: Hi! How can I help you today?`,
    `${at(20_000)} User: ${session.topic.question}`,
    `${at(30_000)} Assistant: ${session.topic.answer}`,
    `${at(60_000)} User: Thanks!`,
  ].join("\n");
}

export interface DemoSource {
  url: string;
  csvUrl(company: DemoCompany): string;
  close(): Promise<void>;
}

export async function startDemoSource(options: {
  port: number;
  host?: string;
}): Promise<DemoSource> {
  // Sessions start two hours back, so the first import has a history to find.
  const epoch = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 2 * 3_600_000;
  const host = options.host ?? "127.0.0.1";
  const baseUrl = `http://${host}:${options.port}`;

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", baseUrl).pathname;
    const csv = /^\/csv\/([a-z]+)\.csv$/.exec(path);
    const transcript = /^\/transcripts\/([a-z]+)\/([a-z]+-\d+)\.txt$/.exec(path);
    const company = DEMO_COMPANIES.find((c) => c.slug === (csv?.[1] ?? transcript?.[1]));
    if (!company) {
      res.writeHead(404).end("not found");
      return;
    }
    if (company.auth) {
      const expected = `Basic ${Buffer.from(`${company.auth.username}:${company.auth.password}`).toString("base64")}`;
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { "www-authenticate": 'Basic realm="demo"' }).end("unauthorised");
        return;
      }
    }
    if (csv) {
      const sessions = sessionsOf(company, epoch, Date.now());
      res
        .writeHead(200, { "content-type": "text/csv; charset=utf-8" })
        .end(csvOf(company, sessions, baseUrl));
      return;
    }
    // Any known id has its transcript, also one imported before a restart moved the clock.
    const index = Number(transcript?.[2]?.split("-")[1]);
    if (!Number.isInteger(index) || index < 0 || index > 100_000) {
      res.writeHead(404).end("no such transcript");
      return;
    }
    const session = sessionAt(company, epoch, index);
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8" }).end(transcriptOf(session));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, resolve);
  });
  return {
    url: baseUrl,
    csvUrl: (company) => `${baseUrl}/csv/${company.slug}.csv`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
