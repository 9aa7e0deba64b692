import { describe, expect, it } from "vitest";
import { call, type Answer } from "./support/api";

const ORIGIN = "https://keyferry.test";
const REQUEST_ID = `req_${"a".repeat(20)}`;

/** Every `/v1/console/*` call this branch serves, with a well-formed body for the state changes. */
const READS = ["/v1/console/requests", "/v1/console/audit", "/v1/console/agents", "/v1/console/operators", "/v1/console/settings", "/v1/console/saved", "/v1/console/saved/stripe-sk"];
const WRITES: Array<[string, string, unknown]> = [
  ["POST", `/v1/console/requests/${REQUEST_ID}/challenge`, { decision: "deny" }],
  ["POST", `/v1/console/requests/${REQUEST_ID}/decide`, { decision: "deny", webauthn: {} }],
  ["POST", "/v1/console/agents", { name: "bot" }],
  ["DELETE", `/v1/console/agents/agt_${"b".repeat(20)}`, {}],
  ["POST", "/v1/console/operators", { email: "new@example.com" }],
  ["DELETE", `/v1/console/operators/opr_${"c".repeat(20)}`, {}],
  ["PATCH", "/v1/console/settings", { webhook_format: "slack" }],
  ["PUT", "/v1/console/saved/stripe-sk", { jwe: "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aXY.Y3Q.dGFn", passkey_id: "cGs", prf_salt: "A".repeat(43) }],
  ["DELETE", "/v1/console/saved/stripe-sk", {}],
];

describe("GET /console", () => {
  it("is the console page, with the approval page's security headers and no inline script", async () => {
    for (const path of ["/console", "/console?x=1"]) {
      const page = await call<string>("GET", path);
      expect(page.status).toBe(200);
      expect(page.headers.get("Content-Type")).toContain("text/html");
      const csp = page.headers.get("Content-Security-Policy")!;
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain("unsafe-inline");
      expect(page.headers.get("Cache-Control")).toBe("no-store");
      expect(page.headers.get("X-Frame-Options")).toBe("DENY");
      const html = page.body;
      expect(html).toContain("/assets/console.js");
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(html).not.toMatch(/\son[a-z]+=/);
    }
  });
});

describe("/v1/console/* without a session", () => {
  it("answers 401 in the error shape to every read", async () => {
    for (const path of READS) {
      const answer = await call<Answer>("GET", path);
      expect([answer.status, answer.body.error, typeof answer.body.error_description], path).toEqual([401, "invalid_token", "string"]);
    }
  });

  it("answers 401 to every same-origin JSON change, and a forged cookie is no better", async () => {
    for (const cookie of [undefined, "__Host-kf_console=forged", "__Host-kf_console=kfs1.x.y.z"]) {
      for (const [method, path, json] of WRITES) {
        const answer = await call<Answer>(method, path, { json, headers: { Origin: ORIGIN, Cookie: cookie } });
        expect([answer.status, answer.body.error], `${method} ${path} ${cookie}`).toEqual([401, "invalid_token"]);
      }
    }
  });

  it("refuses a change from another origin, or with no Origin, with 403, before the session", async () => {
    for (const origin of ["https://evil.example", "null", undefined, "https://keyferry.test.evil.example"]) {
      for (const [method, path, json] of WRITES) {
        const answer = await call<Answer>(method, path, { json, headers: { Origin: origin } });
        expect([answer.status, answer.body.error], `${method} ${path} ${origin}`).toEqual([403, "access_denied"]);
      }
    }
  });

  it("refuses a change that is not JSON with 415, as a cross-site form would send it", async () => {
    for (const [method, path] of WRITES) {
      for (const type of ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", undefined]) {
        const answer = await call<Answer>(method, path, { body: "decision=deny", headers: { Origin: ORIGIN, "Content-Type": type } });
        expect([answer.status, answer.body.error], `${method} ${path} ${type}`).toEqual([415, "invalid_request"]);
      }
    }
  });

  it("answers 405 for another method and 404 for an unknown console path", async () => {
    expect((await call<Answer>("PUT", "/v1/console/requests")).status).toBe(405);
    expect((await call<Answer>("GET", `/v1/console/requests/${REQUEST_ID}/decide`)).status).toBe(405);
    expect((await call<Answer>("GET", "/v1/console/nothing-here")).status).toBe(404);
  });

  it("serves the live list only as a WebSocket, only to the service's origin", async () => {
    const plain = await call<Answer>("GET", "/v1/console/requests/live");
    expect([plain.status, plain.body.error]).toEqual([426, "invalid_request"]);
    const foreign = await call<Answer>("GET", "/v1/console/requests/live", { headers: { Upgrade: "websocket", Origin: "https://evil.example" } });
    expect([foreign.status, foreign.body.error]).toEqual([403, "access_denied"]);
    const anonymous = await call<Answer>("GET", "/v1/console/requests/live", { headers: { Upgrade: "websocket", Origin: ORIGIN } });
    expect([anonymous.status, anonymous.body.error]).toEqual([401, "invalid_token"]);
  });
});
