import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { retryAfterMs } from "../../adapters/openai.ts";
import { doublingBackoff } from "../../workflows/retry-backoff.ts";

const NOW = Date.parse("2026-11-30T12:00:00Z");

function rateLimited(headers: Record<string, string>) {
  return OpenAI.APIError.generate(429, { message: "slow down" }, undefined, new Headers(headers));
}

describe("the wait OpenAI asked for, carried into the next Temporal attempt", () => {
  it.each([
    [
      "retry-after-ms wins over retry-after",
      { "retry-after-ms": "1500", "retry-after": "9" },
      1500,
    ],
    [
      "retry-after in seconds, fractions rounded up to a millisecond",
      { "retry-after": "1.2005" },
      1201,
    ],
    ["retry-after as an HTTP date", { "retry-after": new Date(NOW + 7_000).toUTCString() }, 7000],
    ["capped at five minutes", { "retry-after": "86400" }, 300_000],
  ])("%s", (_name, headers, expected) => {
    expect(retryAfterMs(rateLimited(headers), NOW)).toBe(expected);
  });

  it.each([
    ["no header", {}],
    ["a date in the past", { "retry-after": new Date(NOW - 5_000).toUTCString() }],
    ["zero", { "retry-after": "0" }],
    ["words", { "retry-after": "soon" }],
  ])("none for %s", (_name, headers) => {
    expect(retryAfterMs(rateLimited(headers), NOW)).toBeUndefined();
  });

  it("none for an error that is not an OpenAI API error", () => {
    expect(retryAfterMs(new Error("socket hang up"), NOW)).toBeUndefined();
  });
});

describe("the retry backoff of the activities that reach outside services", () => {
  it("starts at the operator's first wait and doubles up to the cap", () => {
    expect(doublingBackoff(250, 5_000, 60_000)).toEqual({
      initialInterval: 250,
      backoffCoefficient: 2,
      maximumInterval: 60_000,
    });
  });

  it("keeps the built-in first wait for runs whose input predates the setting", () => {
    expect(doublingBackoff(undefined, 5_000, 60_000).initialInterval).toBe(5_000);
  });

  it("never caps below the first wait, which Temporal would refuse", () => {
    expect(doublingBackoff(120_000, 5_000, 60_000).maximumInterval).toBe(120_000);
  });
});
