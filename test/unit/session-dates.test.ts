import { describe, expect, it } from "vitest";
import {
  DateFormatError,
  fastWallClockMs,
  inZone,
  parseSessionDate,
  regexWallClockMs,
  sessionDateMs,
} from "../../domain/session-dates.ts";

/** What a value reads as: its instant, or the error the operator is shown. */
function outcome(read: () => number): string {
  try {
    return String(read());
  } catch (error) {
    if (error instanceof DateFormatError)
      return `${error.implausible ? "implausible" : "format"}: ${error.message}`;
    throw error;
  }
}

const VALUES = [
  "30.04.2025 11:41:48",
  "30.04.2025 11:41",
  "1.5.2025 9:05:07",
  "01.05.2025T09:05:07",
  "29.02.2024 00:00:00",
  "29.02.2025 00:00:00",
  "29.02.2000 12:00:00",
  "29.02.2100 12:00:00",
  "31.04.2025 10:00:00",
  "31.12.2100 23:59:59",
  "01.01.1970 00:00:00",
  "31.12.1969 23:59:59",
  "01.01.2101 00:00:00",
  "01.05.0025 10:00:00",
  "00.05.2025 10:00:00",
  "10.00.2025 10:00:00",
  "10.13.2025 10:00:00",
  "10.05.2025 24:00:00",
  "10.05.2025 23:60:00",
  "10.05.2025 23:59:60",
  " 10.05.2025 10:00:00",
  "10.05.2025 10:00:00 ",
  "10.05.2025  10:00:00",
  "100.05.2025 10:00:00",
  "10.05.25 10:00:00",
  "10.05.2025 10:0:00",
  "10.05.2025 10:00:0",
  "10.05.2025 10:00:",
  "10-05-2025 10:00:00",
  "10.05.2025",
  "",
  "２０.05.2025 10:00:00",
  "27.10.2024 02:30:00",
  "31.03.2024 02:30:00",
];

describe("session dates", () => {
  for (const zone of ["UTC", "Europe/Amsterdam", "America/New_York", "Asia/Kolkata"]) {
    it(`reads every value exactly as the regular-expression path does (${zone})`, () => {
      for (const value of VALUES) {
        expect(
          outcome(() => sessionDateMs(value, zone)),
          value,
        ).toBe(outcome(() => inZone(regexWallClockMs(value), zone)));
        expect(
          outcome(() => parseSessionDate(value, zone).getTime()),
          value,
        ).toBe(outcome(() => sessionDateMs(value, zone)));
      }
    });
  }

  it("reads every value the allocation-free path takes exactly as the regular expression does", () => {
    for (const value of VALUES) {
      const fast = fastWallClockMs(value);
      if (fast !== undefined) expect(fast, value).toBe(regexWallClockMs(value));
    }
  });

  it("takes the allocation-free path for well-formed values and leaves the rest to the regex", () => {
    const fast = VALUES.filter((v) => fastWallClockMs(v) !== undefined);
    expect(fast).toEqual([
      "30.04.2025 11:41:48",
      "30.04.2025 11:41",
      "1.5.2025 9:05:07",
      "01.05.2025T09:05:07",
      "29.02.2024 00:00:00",
      "29.02.2000 12:00:00",
      "31.12.2100 23:59:59",
      "01.01.1970 00:00:00",
      "27.10.2024 02:30:00",
      "31.03.2024 02:30:00",
    ]);
  });

  it("reads wall-clock time in the zone, DST included", () => {
    expect(new Date(sessionDateMs("30.04.2025 11:41:48")).toISOString()).toBe(
      "2025-04-30T11:41:48.000Z",
    );
    expect(new Date(sessionDateMs("30.04.2025 11:41:48", "Europe/Amsterdam")).toISOString()).toBe(
      "2025-04-30T09:41:48.000Z",
    );
    expect(new Date(sessionDateMs("15.01.2025 11:41", "Europe/Amsterdam")).toISOString()).toBe(
      "2025-01-15T10:41:00.000Z",
    );
  });

  it("agrees with the regular-expression path on every day of 1970-2100 at a sampled time", () => {
    for (let day = 0; day < 131 * 366; day += 7) {
      const date = new Date(day * 86_400_000 + ((day * 7919) % 86_400) * 1000);
      const pad = (n: number) => String(n).padStart(2, "0");
      const value = `${pad(date.getUTCDate())}.${pad(date.getUTCMonth() + 1)}.${date.getUTCFullYear()} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`;
      if (date.getUTCFullYear() > 2100) break;
      // The allocation-free path itself, not the fallback behind it, and the reference.
      expect(fastWallClockMs(value), value).toBe(date.getTime());
      expect(regexWallClockMs(value), value).toBe(date.getTime());
      expect(sessionDateMs(value), value).toBe(date.getTime());
    }
  });
});
