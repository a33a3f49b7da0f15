import { type Attributes, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";

/**
 * Spans made by our own code (fetches, direct SQL, OpenAI calls). Without a registered tracer
 * provider (tracing off, adapters/tracing.ts) the API hands out non-recording spans: nothing is kept.
 * Attributes never carry credentials, query strings or request bodies.
 */

const TRACER = "livedash";

/** Fetched per use, not cached: the provider can be registered (and removed) after load. */
export function tracer() {
  return trace.getTracer(TRACER);
}

/** Marks a span failed with the error's message (our errors are written to be safe to show). */
export function failSpan(span: Span, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
  if (error instanceof Error) span.recordException(error);
}

/** Runs `fn` in a span of its own, a child of the active one (the running activity's). */
export function inSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  return tracer().startActiveSpan(name, { kind: SpanKind.CLIENT, attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      failSpan(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** A statement sent straight through node-postgres (Prisma's own are traced by Prisma). */
export function inSqlSpan<T>(
  operation: string,
  table: string,
  sql: string,
  fn: () => Promise<T>,
): Promise<T> {
  return inSpan(
    `${operation} ${table}`,
    {
      "db.system.name": "postgresql",
      "db.operation.name": operation,
      "db.collection.name": table,
      // Placeholders only ($1, $2...): the values never become attributes.
      "db.query.text": sql,
    },
    fn,
  );
}
