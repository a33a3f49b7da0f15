/**
 * POST /v1/chat/completions. The body is read before fault injection (preread middleware) so
 * a failRequestsMatching rule can match the transcript and the request log can name it; the
 * route then answers from that preread body with the chat "model" in chat-completion.ts.
 */

import { Hono, type MiddlewareHandler } from "hono";
import { runChatCompletion, transcriptOfBody } from "../chat-completion.ts";
import { prereadBody, readJson } from "../request-body.ts";
import type { StandInEnv, StandInState } from "../state.ts";

export const CHAT_COMPLETIONS_ROUTE = "POST /v1/chat/completions";

const LOGGED_TRANSCRIPT_CHARS = 200;

/** Reads a chat-completions body up front; a body that cannot be read fails in the route. */
export function prereadChatBody(): MiddlewareHandler<StandInEnv> {
  return async (c, next) => {
    if (c.get("route") === CHAT_COMPLETIONS_ROUTE) {
      const body = await prereadBody(c);
      const transcript = "buffer" in body ? transcriptOfBody(body.buffer) : undefined;
      c.set("chatBody", body);
      c.set("transcript", transcript);
      c.get("entry").transcriptStart = transcript?.slice(0, LOGGED_TRANSCRIPT_CHARS);
    }
    await next();
  };
}

export function chatCompletionsRoutes(state: StandInState): Hono<StandInEnv> {
  const app = new Hono<StandInEnv>();
  app.post("/", async (c) => {
    const outcome = runChatCompletion(await readJson(c, c.get("chatBody")), state.behaviour);
    if (outcome.status === 200) state.log.counters.chatCompletions++;
    return c.json(outcome.body, outcome.status);
  });
  return app;
}
