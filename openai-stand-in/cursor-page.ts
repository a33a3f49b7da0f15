/**
 * OpenAI's cursor pagination for list endpoints (GET /v1/batches, GET /v1/files): `limit`
 * (default 20, clamped to 1..100) and `after` (an id), answered with first_id/last_id/has_more.
 */

export interface CursorList<T> {
  object: "list";
  data: T[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

export function cursorPage<T extends { id: string }>(
  items: readonly T[],
  query: URLSearchParams,
): CursorList<T> {
  const requested = Number.parseInt(query.get("limit") ?? "", 10);
  const limit = Number.isNaN(requested) ? 20 : Math.min(Math.max(requested, 1), 100);
  const after = query.get("after");
  // An unknown cursor yields an empty page rather than restarting, so paging always ends.
  const start =
    after === null ? 0 : items.findIndex((item) => item.id === after) + 1 || items.length;
  const data = items.slice(start, start + limit);
  return {
    object: "list",
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: start + limit < items.length,
  };
}
