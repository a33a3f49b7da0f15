import OpenAI, {
  APIConnectionError,
  APIConnectionTimeoutError,
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  NotFoundError,
  RateLimitError,
  toFile,
} from "openai";
import type { Batch } from "openai/resources/batches";
import type {
  ChatCompletion,
  ChatCompletionCreateParamsNonStreaming,
} from "openai/resources/chat/completions";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ANALYSIS_KEYS, analyseTranscript, CATEGORIES } from "../../openai-stand-in/analysis.ts";
import {
  type BatchOutputLine,
  type OpenAIStandIn,
  startOpenAIStandIn,
} from "../../openai-stand-in/server.ts";

const MODEL = "gpt-4o-mini";

const FAST_BATCHES = { validatingMs: 30, inProgressMs: 120, finalizingMs: 30, cancellingMs: 60 };

const TRANSCRIPTS = {
  schedule: [
    "[01.02.2024 09:00:00] User: Hi, can I swap my shift on Friday?",
    "[01.02.2024 09:00:10] Assistant: Yes, ask your team lead.",
    "[01.02.2024 09:00:20] User: Thanks, that is great!",
  ].join("\n"),
  salary: [
    "[02.02.2024 10:00:00] user: My salary is wrong and I am angry. Why was I not paid overtime?",
    "[02.02.2024 10:00:05] assistant: I have forwarded this to HR and informed your manager.",
  ].join("\n"),
  dutch: [
    "[03.02.2024 11:00:00] User: Hoe kan ik mijn vakantie aanvragen? Ik wil graag een holiday.",
    "[03.02.2024 11:00:09] Assistant: Dat kan in het portaal.",
  ].join("\n"),
  login: "[04.02.2024 12:00:00] USER: I forgot my password, how do I log in?",
};

/** The schema the pipeline sends; strict mode as OpenAI requires it. */
const ANALYSIS_FORMAT: ChatCompletionCreateParamsNonStreaming["response_format"] = {
  type: "json_schema",
  json_schema: {
    name: "session_analysis",
    strict: true,
    schema: {
      type: "object",
      additionalProperties: false,
      required: [...ANALYSIS_KEYS],
      properties: {
        language: { type: "string" },
        sentiment: { type: "string", enum: ["POSITIVE", "NEUTRAL", "NEGATIVE"] },
        escalated: { type: "boolean" },
        forwarded_hr: { type: "boolean" },
        category: { type: "string", enum: [...CATEGORIES] },
        questions: { type: "array", items: { type: "string" } },
        summary: { type: "string" },
      },
    },
  },
};

function analysisRequest(transcript: string): ChatCompletionCreateParamsNonStreaming {
  return {
    model: MODEL,
    messages: [
      { role: "system", content: "Analyse the support chat and answer with JSON." },
      { role: "user", content: transcript },
    ],
    response_format: ANALYSIS_FORMAT,
  };
}

function contentOf(completion: ChatCompletion): string {
  return completion.choices[0]?.message.content ?? "";
}

function batchLine(customId: string, transcript: string): string {
  return JSON.stringify({
    custom_id: customId,
    method: "POST",
    url: "/v1/chat/completions",
    body: analysisRequest(transcript),
  });
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

describe("OpenAI stand-in", () => {
  let standIn: OpenAIStandIn;

  const client = (options: { maxRetries?: number; timeout?: number; apiKey?: string } = {}) =>
    new OpenAI({
      apiKey: options.apiKey ?? "test",
      baseURL: standIn.url,
      maxRetries: options.maxRetries ?? 0,
      timeout: options.timeout ?? 10_000,
    });

  const chatRequests = () => standIn.stats().requests["POST /v1/chat/completions"] ?? 0;

  async function uploadBatchFile(openai: OpenAI, lines: string[]): Promise<string> {
    const jsonl = `${lines.join("\n")}\n`;
    const file = await openai.files.create({
      file: await toFile(Buffer.from(jsonl), "batch.jsonl"),
      purpose: "batch",
    });
    return file.id;
  }

  async function createBatch(openai: OpenAI, lines: string[]): Promise<Batch> {
    const inputFileId = await uploadBatchFile(openai, lines);
    return openai.batches.create({
      input_file_id: inputFileId,
      endpoint: "/v1/chat/completions",
      completion_window: "24h",
      metadata: { source: "test" },
    });
  }

  /** Polls until the batch reaches one of `statuses`; bounded so a bug fails fast. */
  async function waitForBatch(
    openai: OpenAI,
    id: string,
    statuses: Batch["status"][],
  ): Promise<{ batch: Batch; seen: Batch["status"][] }> {
    const seen: Batch["status"][] = [];
    for (let attempt = 0; attempt < 200; attempt++) {
      const batch = await openai.batches.retrieve(id);
      if (seen.at(-1) !== batch.status) seen.push(batch.status);
      if (statuses.includes(batch.status)) return { batch, seen };
      await sleep(20);
    }
    throw new Error(`batch ${id} never reached ${statuses.join("/")}; saw ${seen.join(" -> ")}`);
  }

  async function readJsonl(openai: OpenAI, fileId: string | null | undefined) {
    if (!fileId) throw new Error("expected a file id");
    const text = await (await openai.files.content(fileId)).text();
    return text
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as BatchOutputLine);
  }

  beforeEach(async () => {
    standIn = await startOpenAIStandIn({ behaviour: { batch: FAST_BATCHES } });
  });

  afterEach(async () => {
    await standIn.close();
  });

  describe("analysis", () => {
    it("derives every field from the user's lines", () => {
      expect(analyseTranscript(TRANSCRIPTS.schedule)).toEqual({
        language: "en",
        sentiment: "POSITIVE",
        escalated: false,
        forwarded_hr: false,
        category: "SCHEDULE_HOURS",
        questions: ["Hi, can I swap my shift on Friday?"],
        summary: 'The user asked about "Hi, can I swap my shift on Friday?".',
      });
      expect(analyseTranscript(TRANSCRIPTS.salary)).toMatchObject({
        sentiment: "NEGATIVE",
        escalated: true,
        forwarded_hr: true,
        category: "SALARY_COMPENSATION",
        questions: ["My salary is wrong and I am angry. Why was I not paid overtime?"],
      });
      expect(analyseTranscript(TRANSCRIPTS.dutch)).toMatchObject({
        language: "nl",
        category: "LEAVE_VACATION",
      });
      expect(analyseTranscript(TRANSCRIPTS.login).category).toBe("ACCESS_LOGIN");
    });

    it("caps questions at five and keeps the summary within 10-300 characters", () => {
      const long = Array.from({ length: 8 }, (_, i) => `User: Question ${i} ${"x".repeat(80)}?`);
      const analysis = analyseTranscript(long.join("\n"));
      expect(analysis.questions).toHaveLength(5);
      expect(analysis.summary.length).toBeLessThanOrEqual(300);
      expect(analyseTranscript("").summary).toBe("The conversation contained no user messages.");
      expect(analyseTranscript("no roles here").category).toBe("UNRECOGNIZED_OTHER");
    });
  });

  describe("chat completions", () => {
    it("answers a JSON-schema request with the analysis and plausible usage", async () => {
      const request = analysisRequest(TRANSCRIPTS.salary);
      const completion = await client().chat.completions.create(request);

      expect(completion.id).toMatch(/^chatcmpl-/);
      expect(completion.object).toBe("chat.completion");
      expect(completion.model).toBe(MODEL);
      expect(completion.choices[0]?.finish_reason).toBe("stop");
      expect(completion.choices[0]?.message.role).toBe("assistant");
      const content = contentOf(completion);
      expect(JSON.parse(content)).toEqual(analyseTranscript(TRANSCRIPTS.salary));

      const promptChars = request.messages.reduce((sum, m) => sum + String(m.content).length, 0);
      const promptTokens = Math.ceil(promptChars / 4) + 3 * request.messages.length;
      const completionTokens = Math.ceil(content.length / 4);
      expect(completion.usage).toMatchObject({
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
        prompt_tokens_details: { cached_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 0 },
      });
      expect(standIn.stats().chatCompletions).toBe(1);
    });

    it("analyses the last user message and reads text content parts", async () => {
      const completion = await client().chat.completions.create({
        model: MODEL,
        messages: [
          { role: "user", content: "ignored earlier message" },
          { role: "user", content: [{ type: "text", text: TRANSCRIPTS.login }] },
        ],
      });
      expect(JSON.parse(contentOf(completion))).toEqual(analyseTranscript(TRANSCRIPTS.login));
    });

    it("rejects a strict schema OpenAI would reject", async () => {
      const error = await client()
        .chat.completions.create({
          ...analysisRequest(TRANSCRIPTS.login),
          response_format: {
            type: "json_schema",
            json_schema: { name: "bad", strict: true, schema: { type: "object", properties: {} } },
          },
        })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(BadRequestError);
      expect((error as BadRequestError).param).toBe("response_format");
    });

    it("returns malformed answers for matching transcripts", async () => {
      standIn.configure({ malformedOutputMatching: "password" });
      const broken = await client().chat.completions.create(analysisRequest(TRANSCRIPTS.login));
      expect(() => JSON.parse(contentOf(broken))).toThrow();
      const fine = await client().chat.completions.create(analysisRequest(TRANSCRIPTS.schedule));
      expect(JSON.parse(contentOf(fine))).toEqual(analyseTranscript(TRANSCRIPTS.schedule));

      standIn.configure({ malformedOutputKind: "missing_fields" });
      const partial = await client().chat.completions.create(analysisRequest(TRANSCRIPTS.login));
      const parsed = JSON.parse(contentOf(partial)) as Record<string, unknown>;
      expect(parsed).not.toHaveProperty("category");
      expect(parsed).toHaveProperty("language", "en");
    });
  });

  describe("failures", () => {
    it("sends 429 with retry-after, which the SDK waits for and retries", async () => {
      standIn.configure({ failNext: { count: 1, status: 429, retryAfterSeconds: 1 } });
      const started = Date.now();
      const completion = await client({ maxRetries: 2 }).chat.completions.create(
        analysisRequest(TRANSCRIPTS.schedule),
      );
      // The SDK's own first back-off is at most 0.5 s, so >= 1 s shows it honoured retry-after.
      expect(Date.now() - started).toBeGreaterThanOrEqual(950);
      expect(JSON.parse(contentOf(completion))).toEqual(analyseTranscript(TRANSCRIPTS.schedule));
      expect(chatRequests()).toBe(2);
      expect(standIn.stats().injected.rateLimited).toBe(1);
    });

    it("exposes OpenAI's rate-limit error and headers once retries run out", async () => {
      standIn.configure({ failNext: { count: 1, status: 429, retryAfterSeconds: 7 } });
      const error = await client()
        .chat.completions.create(analysisRequest(TRANSCRIPTS.schedule))
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RateLimitError);
      const rateLimit = error as RateLimitError;
      expect(rateLimit.status).toBe(429);
      expect(rateLimit.code).toBe("rate_limit_exceeded");
      expect(rateLimit.headers.get("retry-after")).toBe("7");
      expect(rateLimit.headers.get("x-ratelimit-remaining-requests")).toBe("0");
      expect(rateLimit.requestID).toMatch(/^req_/);
    });

    it("injects 500s that the SDK surfaces or retries", async () => {
      standIn.configure({ failNext: { count: 1, status: 500 } });
      const error = await client()
        .chat.completions.create(analysisRequest(TRANSCRIPTS.schedule))
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InternalServerError);
      expect((error as InternalServerError).type).toBe("server_error");

      standIn.configure({ failNext: { count: 1, status: 500 } });
      await client({ maxRetries: 1 }).chat.completions.create(analysisRequest(TRANSCRIPTS.login));
      expect(chatRequests()).toBe(3);
      expect(standIn.stats().injected.serverErrors).toBe(2);
      expect(standIn.stats().chatCompletions).toBe(1);
    });

    it("repeats the same random failures for the same seed", async () => {
      const openai = client();
      const run = async () => {
        standIn.configure({
          failures: { rate429: 0.3, rate500: 0.3, seed: 42, retryAfterSeconds: 0 },
        });
        const outcomes: string[] = [];
        for (let i = 0; i < 12; i++) {
          outcomes.push(
            await openai.batches.list().then(
              () => "ok",
              (error: unknown) => String((error as { status?: number }).status),
            ),
          );
        }
        return outcomes;
      };
      const first = await run();
      expect(await run()).toEqual(first);
      expect(new Set(first)).toEqual(new Set(["ok", "429", "500"]));
    });

    it("holds timed-out requests until the client gives up; close() is still prompt", async () => {
      standIn.configure({ failures: { timeoutRate: 1 } });
      const error = await client({ timeout: 200, maxRetries: 1 })
        .chat.completions.create(analysisRequest(TRANSCRIPTS.schedule))
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(APIConnectionTimeoutError);
      expect(standIn.stats().injected.timeouts).toBe(2);

      const hanging = client({ timeout: 60_000 })
        .chat.completions.create(analysisRequest(TRANSCRIPTS.schedule))
        .catch((caught: unknown) => caught);
      await sleep(50);
      const started = Date.now();
      await standIn.close();
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(await hanging).toBeInstanceOf(APIConnectionError);
    });

    it("requires the API key when one is configured", async () => {
      await standIn.close();
      standIn = await startOpenAIStandIn({ apiKey: "sk-local" });
      const error = await client({ apiKey: "wrong" })
        .batches.list()
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(AuthenticationError);
      expect((error as AuthenticationError).code).toBe("invalid_api_key");
      await expect(client({ apiKey: "sk-local" }).batches.list()).resolves.toBeDefined();
    });

    it("answers unknown routes with OpenAI's 404 error shape", async () => {
      const error = await client()
        .models.list()
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(NotFoundError);
      expect((error as NotFoundError).error).toEqual({
        message: "Invalid URL (GET /v1/models)",
        type: "invalid_request_error",
        param: null,
        code: null,
      });
      expect(standIn.stats().requests.unmatched).toBe(1);
    });
  });

  describe("files", () => {
    it("stores an upload and returns it byte for byte", async () => {
      const openai = client();
      const lines = [batchLine("a", TRANSCRIPTS.schedule), batchLine("b", "User: ünïcödé?")];
      const jsonl = `${lines.join("\n")}\n`;
      const file = await openai.files.create({
        file: await toFile(Buffer.from(jsonl), "batch.jsonl"),
        purpose: "batch",
      });
      expect(file).toMatchObject({
        object: "file",
        bytes: Buffer.byteLength(jsonl),
        filename: "batch.jsonl",
        purpose: "batch",
        status: "processed",
      });
      expect(file.id).toMatch(/^file-/);
      expect(await openai.files.retrieve(file.id)).toEqual(file);
      expect(await (await openai.files.content(file.id)).text()).toBe(jsonl);
      await expect(openai.files.retrieve("file-missing")).rejects.toBeInstanceOf(NotFoundError);
      expect(standIn.stats().filesStored).toBe(1);
    });
  });

  describe("batches", () => {
    it("completes a batch: shuffled output lines, failed lines in the error file", async () => {
      // Long enough in_progress that polling every 20 ms sees it even on a busy machine.
      standIn.configure({ failLinesMatching: "session-fail", batch: { inProgressMs: 400 } });
      const openai = client();
      const inputs = {
        "session-1": TRANSCRIPTS.schedule,
        "session-2": TRANSCRIPTS.salary,
        "session-3": TRANSCRIPTS.dutch,
        "session-4": TRANSCRIPTS.login,
        "session-fail": TRANSCRIPTS.schedule,
      };
      const created = await createBatch(
        openai,
        Object.entries(inputs).map(([id, transcript]) => batchLine(id, transcript)),
      );
      expect(created).toMatchObject({
        object: "batch",
        status: "validating",
        endpoint: "/v1/chat/completions",
        completion_window: "24h",
        output_file_id: null,
        error_file_id: null,
        errors: null,
        metadata: { source: "test" },
      });
      expect(created.id).toMatch(/^batch_/);

      const { batch, seen } = await waitForBatch(openai, created.id, ["completed", "failed"]);
      expect(seen.at(-1)).toBe("completed");
      expect(seen).toContain("in_progress");
      expect(batch.request_counts).toEqual({ total: 5, completed: 4, failed: 1 });
      for (const stamp of ["in_progress_at", "finalizing_at", "completed_at"] as const) {
        expect(batch[stamp]).toBeGreaterThanOrEqual(created.created_at);
      }

      const output = await readJsonl(openai, batch.output_file_id);
      const outputIds = output.map((line) => line.custom_id);
      expect([...outputIds].sort()).toEqual(["session-1", "session-2", "session-3", "session-4"]);
      expect(outputIds).not.toEqual(["session-1", "session-2", "session-3", "session-4"]);
      for (const line of output) {
        expect(line.id).toMatch(/^batch_req_/);
        expect(line.error).toBeNull();
        expect(line.response?.status_code).toBe(200);
        const body = line.response?.body as ChatCompletion;
        const transcript = inputs[line.custom_id as keyof typeof inputs];
        expect(JSON.parse(contentOf(body))).toEqual(analyseTranscript(transcript));
      }

      const errors = await readJsonl(openai, batch.error_file_id);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({
        custom_id: "session-fail",
        response: { status_code: 500, body: { error: { type: "server_error" } } },
        error: null,
      });
      expect(standIn.stats()).toMatchObject({ batchesCreated: 1, batchesCompleted: 1 });
    });

    it("fails a batch whose input has an invalid JSONL line", async () => {
      const openai = client();
      const created = await createBatch(openai, [batchLine("ok", TRANSCRIPTS.login), "{not json"]);
      const { batch } = await waitForBatch(openai, created.id, ["failed", "completed"]);
      expect(batch.status).toBe("failed");
      expect(batch.errors?.data).toEqual([
        {
          code: "invalid_json_line",
          message: "This line is not parseable as valid JSON.",
          param: null,
          line: 2,
        },
      ]);
      expect(batch.output_file_id).toBeNull();
      expect(batch.error_file_id).toBeNull();
      expect(batch.failed_at).toBeGreaterThanOrEqual(created.created_at);
    });

    it("fails a batch when the behaviour says so", async () => {
      standIn.configure({ batchOutcome: "failed" });
      const openai = client();
      const created = await createBatch(openai, [batchLine("ok", TRANSCRIPTS.login)]);
      const { batch } = await waitForBatch(openai, created.id, ["failed", "completed"]);
      expect(batch.status).toBe("failed");
      expect(batch.errors?.data?.[0]?.code).toBe("batch_failed");
      expect(standIn.stats().batchesFailed).toBe(1);
    });

    it("rejects an unknown input file", async () => {
      const error = await client()
        .batches.create({
          input_file_id: "file-unknown",
          endpoint: "/v1/chat/completions",
          completion_window: "24h",
        })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(BadRequestError);
      expect((error as BadRequestError).param).toBe("input_file_id");
    });

    it("expires a batch with partial output and batch_expired lines", async () => {
      standIn.configure({ batchOutcome: "expired" });
      const openai = client();
      const ids = ["s1", "s2", "s3", "s4"];
      const created = await createBatch(
        openai,
        ids.map((id) => batchLine(id, TRANSCRIPTS.schedule)),
      );
      const { batch } = await waitForBatch(openai, created.id, ["expired", "completed"]);
      expect(batch.status).toBe("expired");
      expect(batch.expired_at).toBe(batch.expires_at);
      expect(batch.request_counts).toEqual({ total: 4, completed: 2, failed: 2 });

      const output = await readJsonl(openai, batch.output_file_id);
      const errors = await readJsonl(openai, batch.error_file_id);
      expect(output).toHaveLength(2);
      expect(errors).toHaveLength(2);
      for (const line of errors) {
        expect(line.response).toBeNull();
        expect(line.error?.code).toBe("batch_expired");
      }
      const all = [...output, ...errors].map((line) => line.custom_id).sort();
      expect(all).toEqual(ids);
    });

    it("cancels a running batch", async () => {
      standIn.configure({ batch: { inProgressMs: 60_000 } });
      const openai = client();
      const created = await createBatch(openai, [batchLine("s1", TRANSCRIPTS.login)]);
      const cancelling = await openai.batches.cancel(created.id);
      expect(cancelling.status).toBe("cancelling");
      expect(cancelling.cancelling_at).toBeGreaterThanOrEqual(created.created_at);

      const { batch } = await waitForBatch(openai, created.id, ["cancelled"]);
      expect(batch.cancelled_at).toBeGreaterThanOrEqual(batch.cancelling_at ?? 0);
      expect(batch.output_file_id).toBeNull();
      expect(standIn.stats().batchesCancelled).toBe(1);
      await expect(openai.batches.cancel(created.id)).resolves.toMatchObject({
        status: "cancelled",
      });
    });

    it("refuses to cancel a finished batch", async () => {
      const openai = client();
      const created = await createBatch(openai, [batchLine("s1", TRANSCRIPTS.login)]);
      await waitForBatch(openai, created.id, ["completed"]);
      await expect(openai.batches.cancel(created.id)).rejects.toBeInstanceOf(BadRequestError);
    });

    it("loses a batch and a result file on request: the SDK then gets OpenAI's 404", async () => {
      const openai = client();
      const lost = await createBatch(openai, [batchLine("s1", TRANSCRIPTS.login)]);
      const kept = await createBatch(openai, [batchLine("s2", TRANSCRIPTS.login)]);
      const { batch } = await waitForBatch(openai, kept.id, ["completed"]);

      expect(standIn.loseBatch(lost.id)).toBe(true);
      expect(standIn.loseBatch("batch_never_existed")).toBe(false);
      const error = await openai.batches.retrieve(lost.id).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(NotFoundError);
      expect((error as NotFoundError).message).toContain(`No batch found with id '${lost.id}'`);
      await expect(openai.batches.cancel(lost.id)).rejects.toBeInstanceOf(NotFoundError);
      const listed: string[] = [];
      for await (const listedBatch of openai.batches.list()) listed.push(listedBatch.id);
      expect(listed).toEqual([kept.id]);

      const outputFileId = batch.output_file_id ?? "";
      expect(standIn.loseFile(outputFileId)).toBe(true);
      await expect(openai.files.content(outputFileId)).rejects.toBeInstanceOf(NotFoundError);
      // The batch itself still points at the file it lost.
      expect((await openai.batches.retrieve(kept.id)).output_file_id).toBe(outputFileId);
    });

    it("lists batches newest first with cursor pagination", async () => {
      const openai = client();
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        ids.push((await createBatch(openai, [batchLine(`s${i}`, TRANSCRIPTS.login)])).id);
      }
      const listed: string[] = [];
      for await (const batch of openai.batches.list({ limit: 2 })) listed.push(batch.id);
      expect(listed).toEqual([...ids].reverse());
      expect(standIn.stats().requests["GET /v1/batches"]).toBe(2);
    });
  });
});
