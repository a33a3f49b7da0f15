/**
 * The stand-in as a Hono app: the request pipeline (record, latency, API key, chat preread,
 * fault injection, unknown routes) for every request, then one sub-app per resource mounted
 * with app.route(). Built per running stand-in around its StandInState.
 */

import { Hono } from "hono";
import { injectFaults } from "./fault-injection.ts";
import {
  answerError,
  answerUnmatched,
  applyLatency,
  recordRequest,
  requireApiKey,
  routedPath,
  unmatchedRoute,
} from "./request-pipeline.ts";
import { batchesRoutes } from "./routes/batches.ts";
import { chatCompletionsRoutes, prereadChatBody } from "./routes/chat-completions.ts";
import { filesRoutes } from "./routes/files.ts";
import type { StandInEnv, StandInState } from "./state.ts";

export function createStandInApp(state: StandInState): Hono<StandInEnv> {
  const app = new Hono<StandInEnv>({ getPath: routedPath });
  app.use("*", recordRequest(state));
  app.use("*", applyLatency(state));
  app.use("*", requireApiKey(state));
  app.use("*", prereadChatBody());
  app.use("*", injectFaults(state));
  app.use("*", answerUnmatched());
  app.route("/v1/chat/completions", chatCompletionsRoutes(state));
  app.route("/v1/files", filesRoutes(state));
  app.route("/v1/batches", batchesRoutes(state));
  app.notFound(unmatchedRoute);
  app.onError(answerError);
  return app;
}
