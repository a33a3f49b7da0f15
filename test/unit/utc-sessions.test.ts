import { afterEach, describe, expect, it } from "vitest";
import { withUtcSessions } from "../../adapters/db/utc-sessions.ts";

describe("database sessions pinned to UTC (adapters/db/utc-sessions.ts)", () => {
  const pgOptions = process.env.PGOPTIONS;
  afterEach(() => {
    if (pgOptions === undefined) delete process.env.PGOPTIONS;
    else process.env.PGOPTIONS = pgOptions;
  });

  it("adds TimeZone=UTC and keeps what the URL says", () => {
    delete process.env.PGOPTIONS;
    expect(withUtcSessions("postgresql://app:secret@db.internal:6432/livedash")).toMatchObject({
      host: "db.internal",
      port: "6432",
      user: "app",
      password: "secret",
      database: "livedash",
      options: "-c TimeZone=UTC",
    });
  });

  it("puts UTC after the URL's own options, which would otherwise override the pool's", () => {
    const url =
      "postgresql://app@db/livedash?options=-c%20TimeZone%3DAsia%2FTokyo%20-c%20search_path%3Dx";
    expect(withUtcSessions(url).options).toBe(
      "-c TimeZone=Asia/Tokyo -c search_path=x -c TimeZone=UTC",
    );
  });

  it("reads every form node-postgres reads, a socket host with credentials included", () => {
    const url =
      "postgresql://app:secret@/livedash?host=/var/run/postgresql&options=-c%20search_path%3Dx";
    expect(withUtcSessions(url)).toMatchObject({
      host: "/var/run/postgresql",
      database: "livedash",
      options: "-c search_path=x -c TimeZone=UTC",
    });
  });

  it("keeps PGOPTIONS, which a set options would otherwise shadow", () => {
    process.env.PGOPTIONS = "-c statement_timeout=5000";
    expect(withUtcSessions("postgresql://app@db/livedash").options).toBe(
      "-c statement_timeout=5000 -c TimeZone=UTC",
    );
  });
});
