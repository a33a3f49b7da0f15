/**
 * Reading request bodies the way the stand-in always has: at most 64 MiB (413 beyond), JSON
 * with OpenAI's parse error, and multipart uploads. Hand-written instead of Hono's parseBody /
 * c.req.json: those read without a size limit, parseBody keeps the last of repeated fields
 * (FormData.get keeps the first) and also accepts url-encoded forms, while the stand-in
 * must answer exactly as before. Multipart parsing itself is the Web Request API's formData().
 * Under @hono/node-server the body is read from Node's IncomingMessage (c.env.incoming) rather
 * than c.req.raw.body: converting it to a web stream was the largest cost in a profile of chat
 * completions, and benches run the stand-in in their own process. Without it (app.request in a
 * test) the web stream is read, under the same limit.
 */

import type { IncomingMessage } from "node:http";
import type { Context } from "hono";
import { badRequest, bodyTooLarge } from "./errors.ts";
import type { PrereadBody, StandInEnv } from "./state.ts";

const MAX_BODY_BYTES = 64 * 1024 * 1024;

export function readBody(c: Context<StandInEnv>): Promise<Buffer> {
  const incoming = c.env?.incoming;
  return incoming ? readNodeBody(incoming) : readWebBody(c.req.raw.body);
}

async function readNodeBody(incoming: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of incoming) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) throw bodyTooLarge();
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

async function readWebBody(stream: ReadableStream<Uint8Array> | null): Promise<Buffer> {
  if (stream === null) return Buffer.alloc(0);
  const reader = stream.getReader();
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      void reader.cancel().catch(() => {});
      throw bodyTooLarge();
    }
    chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }
  return Buffer.concat(chunks);
}

/** Reads the body now and keeps a failure to answer later, where the route would have. */
export function prereadBody(c: Context<StandInEnv>): Promise<PrereadBody> {
  return readBody(c).then(
    (buffer) => ({ buffer }),
    (error: unknown) => ({ error }),
  );
}

export async function readJson(c: Context<StandInEnv>, preread?: PrereadBody): Promise<unknown> {
  if (preread && "error" in preread) throw preread.error;
  const text = (preread ? preread.buffer : await readBody(c)).toString("utf8");
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest(
      "We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.",
    );
  }
}

export async function readForm(c: Context<StandInEnv>): Promise<FormData> {
  const contentType = c.req.header("content-type") ?? "";
  if (!contentType.startsWith("multipart/form-data")) {
    throw badRequest("Expected a multipart/form-data body.");
  }
  const body = await readBody(c);
  const request = new Request("http://stand-in.local/", {
    method: "POST",
    headers: { "content-type": contentType },
    body: new Uint8Array(body),
  });
  try {
    return await request.formData();
  } catch {
    throw badRequest("Could not parse the multipart/form-data body.");
  }
}
