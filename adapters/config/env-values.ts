/**
 * How one environment variable's text becomes a value: the parsers every area schema
 * (scheduler-env.ts, sources-env.ts, ...) builds on, so "blank means unset", booleans, whole
 * numbers, cron expressions, URLs and file settings read the same way, with the same messages,
 * for every variable.
 */
import { existsSync } from "node:fs";
import { CronExpressionParser } from "cron-parser";
import { z } from "zod";

/**
 * Unset, empty and blank all mean "not set"; a set value is trimmed. Parsers piped after this
 * one quote the trimmed value when they reject it (" maybe " is quoted "maybe").
 */
export const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === "" ? undefined : value.trim()));

/**
 * The words a boolean variable accepts, in any case. Narrower than z.stringbool()'s defaults,
 * which would also take y, n, enabled and disabled: those stay rejected, as they always were.
 */
const TRUE_WORDS = ["true", "1", "yes", "on"];
const FALSE_WORDS = ["false", "0", "no", "off"];

/** true/1/yes/on or false/0/no/off; anything else is `expected true or false`. */
export const flagWord = z.stringbool({
  truthy: TRUE_WORDS,
  falsy: FALSE_WORDS,
  error: (issue) => `expected true or false, got "${String(issue.input)}"`,
});

/** A boolean variable that may stay unset (undefined). */
export const optionalBool = optionalText.pipe(flagWord.optional());

/**
 * A boolean variable; blank or unset: `fallback`. z.stringbool() does not trim, so the value is
 * trimmed first (values always were); a bad value is quoted trimmed.
 */
export const bool = (fallback: boolean) => optionalBool.transform((value) => value ?? fallback);

/**
 * A whole number from `min` to `max`; blank or unset: `fallback`. Digits only (an optional minus
 * sign): z.coerce.number() alone would also take "1e3", "0x10", "2.0" and "Infinity", which were
 * always refused, so the text is checked before it is coerced.
 */
export function int(fallback: number, min: number, max: number) {
  const error = (issue: { input?: unknown }) =>
    `expected an integer from ${min} to ${max}, got "${String(issue.input)}"`;
  return optionalText
    .pipe(
      z
        .string()
        .regex(/^-?\d+$/, { error, abort: true })
        .refine((text) => inRange(Number(text), min, max), { error })
        .pipe(z.coerce.number())
        .optional(),
    )
    .transform((value) => value ?? fallback);
}

/**
 * A number as JavaScript's Number() reads it (so "1e3" and "0x50" pass, as they always did),
 * accepted when `accept` says so; checked on the text so a message quotes what was written.
 */
export function number(accept: (value: number) => boolean, expected: string) {
  return optionalText.pipe(
    z
      .string()
      .refine((text) => accept(Number(text)), {
        error: (issue) => `expected ${expected}, got "${String(issue.input)}"`,
      })
      .pipe(z.coerce.number())
      .optional(),
  );
}

function inRange(value: number, min: number, max: number): boolean {
  return Number.isSafeInteger(value) && value >= min && value <= max;
}

/** A name from a fixed list (log levels, analysis modes); blank or unset: `fallback`. */
export function oneOf<const T extends readonly [string, ...string[]]>(
  values: T,
  fallback: T[number],
  expected = `one of ${values.join(", ")}`,
) {
  return optionalText.pipe(
    z
      .enum(values, { error: (issue) => `expected ${expected}, got "${String(issue.input)}"` })
      .default(fallback),
  );
}

/**
 * A five-field cron expression (minute hour day-of-month month day-of-week), the form the
 * documented defaults use and Temporal schedules accept.
 */
export const cron = (fallback: string) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      const expression = value === undefined || value.trim() === "" ? fallback : value.trim();
      const problem = cronProblem(expression);
      if (problem) {
        ctx.addIssue({ code: "custom", message: `${problem}, got "${value}"` });
        return z.NEVER;
      }
      return expression;
    });

export function cronProblem(expression: string): string | undefined {
  const fields = expression.split(/\s+/);
  if (fields.length !== 5) {
    return `expected a cron expression with 5 fields (minute hour day month weekday)`;
  }
  try {
    CronExpressionParser.parse(expression, { strict: false });
    return undefined;
  } catch (error) {
    return `expected a valid cron expression (${(error as Error).message})`;
  }
}

/** A URL with one of `protocols`; a rejected one is quoted without its password. */
export const optionalUrl = (protocols: string[]) =>
  optionalText.superRefine((value, ctx) => {
    if (value === undefined) return;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: "custom", message: `expected a URL, got "${redact(value)}"` });
      return;
    }
    if (!protocols.includes(url.protocol)) {
      ctx.addIssue({
        code: "custom",
        message: `expected a ${protocols.join(" or ")} URL, got "${redact(value)}"`,
      });
    }
  });

/** An IANA time zone name; blank or unset: `fallback`. */
export const timeZone = (fallback: string) =>
  optionalText.transform((value, ctx) => {
    const zone = value ?? fallback;
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: zone });
      return zone;
    } catch {
      ctx.addIssue({ code: "custom", message: `expected an IANA time zone, got "${value}"` });
      return z.NEVER;
    }
  });

/** Lowercase letters, digits and dashes: the form region names take in schedule ids. */
export const REGION_NAME = /^[a-z0-9][a-z0-9-]{0,30}$/;

/** A readable file path (TLS certificates and keys), checked at startup. */
export const filePath = optionalText.superRefine((value, ctx) => {
  if (value !== undefined && !existsSync(value)) {
    ctx.addIssue({ code: "custom", message: `no such file "${value}"` });
  }
});

/** PEM text given inline (certificates, keys); never echoed back in a message. */
export const pemData = optionalText.superRefine((value, ctx) => {
  if (value !== undefined && !value.includes("-----BEGIN ")) {
    ctx.addIssue({ code: "custom", message: "expected PEM text (-----BEGIN ...)" });
  }
});

/** Hides the password of a URL before it is shown in a message or log. */
export function redact(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = "***";
    return url.toString();
  } catch {
    return value.replace(/\/\/([^:/@]+):[^@/]+@/, "//$1:***@");
  }
}
