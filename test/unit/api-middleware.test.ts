import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../adapters/config.ts";
import { createLogger } from "../../adapters/logger.ts";
import { assertAdminAuthConfigured, createApp } from "../../api/app.ts";

/**
 * What Hono's built-in middleware decides in the API, pinned where the built-in would otherwise
 * answer differently: bearerAuth (the 401 envelope and challenge, also for a malformed header;
 * the session cookie), csrf() (same-origin rules, the dashboard's 403 page, the proxy's origin)
 * and secureHeaders() (exactly the dashboard's headers, none on the JSON API or the docs page).
 * Only routes that need neither Temporal nor PostgreSQL are called.
 */

const TOKEN = "middleware-test-token-0123456789";
const UNAUTHORIZED = {
  error: {
    code: "unauthorized",
    message: "a valid admin token is required (Authorization: Bearer <token>)",
  },
};
const FORM = { "content-type": "application/x-www-form-urlencoded" };

function app(env: Record<string, string> = { ADMIN_API_TOKEN: TOKEN }) {
  const config = loadConfig({
    DATABASE_URL: "postgresql://unused:unused@127.0.0.1:1/unused",
    REGION: "middleware-test",
    LOG_LEVEL: "silent",
    ...env,
  });
  return createApp({
    config,
    client: {} as never,
    db: {} as never,
    log: createLogger("silent", "middleware-test"),
  });
}

describe("admin token (bearerAuth)", () => {
  const api = app();
  // No route: a request the token lets through answers 404, one it stops answers 401.
  const get = (headers: Record<string, string> = {}) =>
    api.request("/api/admin/no-such-route", { headers });

  it("refuses a missing, wrong or malformed credential with the 401 envelope and challenge", async () => {
    for (const headers of <Record<string, string>[]>[
      {},
      { authorization: "Bearer wrong-token-but-long-enough" },
      { authorization: "Basic bWU6cGFzc3dvcmQ=" },
      { authorization: "Bearer not a token68 value" },
      { cookie: "livedash_admin=wrong-token-but-long-enough" },
    ]) {
      const response = await get(headers);
      expect(response.status, JSON.stringify(headers)).toBe(401);
      expect(response.headers.get("www-authenticate")).toBe('Bearer realm="livedash-admin"');
      expect(response.headers.get("content-type")).toBe("application/json");
      expect(response.headers.get("x-request-id")).toBeTruthy();
      expect(await response.json()).toEqual(UNAUTHORIZED);
    }
  });

  it("lets the token through as a Bearer header (any case of the scheme) or as the session cookie", async () => {
    expect((await get({ authorization: `Bearer ${TOKEN}` })).status).toBe(404);
    expect((await get({ authorization: `bearer ${TOKEN}` })).status).toBe(404);
    expect((await get({ cookie: `livedash_admin=${TOKEN}` })).status).toBe(404);
  });

  it("leaves the liveness probe and the docs open", async () => {
    expect((await api.request("/livez")).status).toBe(200);
    expect((await api.request("/api/openapi.json")).status).toBe(200);
    expect((await api.request("/api/docs")).status).toBe(200);
  });

  it("refuses at startup a token bearerAuth could never accept", () => {
    const config = (token: string) =>
      loadConfig({ DATABASE_URL: "postgresql://u:p@127.0.0.1:1/d", ADMIN_API_TOKEN: token });
    expect(() => assertAdminAuthConfigured(config("base64+/token-0123456789=="))).not.toThrow();
    expect(() => assertAdminAuthConfigured(config("has spaces and ! 0123456789"))).toThrow(
      ConfigError,
    );
  });
});

describe("dashboard forms (csrf)", () => {
  const api = app();
  const signIn = (headers: Record<string, string>) =>
    api.request("http://dash.internal/admin/login", {
      method: "POST",
      headers: { ...FORM, ...headers },
      body: "token=wrong-token-but-long-enough",
    });
  // Passing the CSRF check, a wrong token answers the sign-in form again (401); refused, 403.

  it("refuses a cross-site form POST with the dashboard's own 403 page", async () => {
    const refused = await signIn({ origin: "https://evil.example" });
    expect(refused.status).toBe(403);
    expect(refused.headers.get("content-type")).toContain("text/html");
    expect(await refused.text()).toContain("This form was sent from another site.");
    expect(refused.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(refused.headers.get("cache-control")).toBe("no-store");
  });

  it("lets an Origin decide alone; Sec-Fetch-Site counts only without one", async () => {
    expect((await signIn({ origin: "http://dash.internal" })).status).toBe(401);
    expect((await signIn({ origin: "null" })).status).toBe(403);
    expect(
      (await signIn({ origin: "https://evil.example", "sec-fetch-site": "same-origin" })).status,
    ).toBe(403);
    expect((await signIn({ "sec-fetch-site": "same-origin" })).status).toBe(401);
    expect((await signIn({ "sec-fetch-site": "none" })).status).toBe(401);
    expect((await signIn({ "sec-fetch-site": "same-site" })).status).toBe(403);
    expect((await signIn({ "sec-fetch-site": "cross-site" })).status).toBe(403);
  });

  it("accepts the origin a TLS-terminating proxy reports, and a request with neither header", async () => {
    const proxied = {
      "x-forwarded-proto": "https",
      "x-forwarded-host": "livedash.example.com",
    };
    expect((await signIn({ ...proxied, origin: "https://livedash.example.com" })).status).toBe(401);
    expect((await signIn({ ...proxied, origin: "https://other.example.com" })).status).toBe(403);
    expect((await signIn({})).status).toBe(401);
  });
});

describe("security headers (secureHeaders)", () => {
  const api = app();

  it("sends the dashboard exactly its CSP, with the nonce its style sheet carries", async () => {
    const page = await api.request("/admin");
    expect(page.status).toBe(200);
    const csp = page.headers.get("content-security-policy") ?? "";
    const nonce = /'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeTruthy();
    expect(csp).toBe(
      `default-src 'none'; style-src 'nonce-${nonce}'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    );
    expect(await page.text()).toContain(`<style nonce="${nonce}">`);
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    expect(page.headers.get("referrer-policy")).toBe("same-origin");
    expect(page.headers.get("cache-control")).toBe("no-store");
    // secureHeaders' other defaults stay off, as before.
    for (const header of ["strict-transport-security", "cross-origin-opener-policy"]) {
      expect(page.headers.get(header), header).toBeNull();
    }
    // A fresh nonce per response.
    const again = (await api.request("/admin")).headers.get("content-security-policy");
    expect(again).not.toBe(csp);
  });

  it("keeps them off the JSON API and the Swagger UI page (its assets come from a CDN)", async () => {
    for (const path of ["/livez", "/api/docs", "/api/openapi.json"]) {
      const response = await api.request(path);
      expect(response.headers.get("content-security-policy"), path).toBeNull();
      expect(response.headers.get("x-frame-options"), path).toBeNull();
    }
  });
});
