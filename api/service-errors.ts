/** Maps the admin service's errors (unknown scheduler, conflicting action) onto the envelope. */

import { ActionConflictError, UnknownSchedulerError } from "../control-plane/admin-service.ts";
import { errorBody } from "./envelope.ts";

/** Maps service errors onto the envelope; anything else is the global error handler's. */
export async function answer<T>(run: () => Promise<T>) {
  try {
    return { ok: true as const, value: await run() };
  } catch (error) {
    if (error instanceof UnknownSchedulerError) {
      return {
        ok: false as const,
        status: 404 as const,
        body: errorBody("not_found", error.message),
      };
    }
    if (error instanceof ActionConflictError) {
      return {
        ok: false as const,
        status: 409 as const,
        body: errorBody("conflict", error.message),
      };
    }
    throw error;
  }
}
