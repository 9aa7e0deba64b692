import { describe, expect, it } from "vitest";
import { admin, bearer, call, newAgent, requestCredential, type Answer, type ApiResponse, type PollAnswer } from "./support/api";
import { forgeHandle } from "./support/forgery";
import type { AccountBody, BackchannelAuthenticationBody, DeviceAuthorizationBody, LookupAnswerBody, TokenBody } from "../../core/wire";

/** Every error is 4xx, in the contract's shape, and carries no stack trace or internal detail. */
function expectCleanError(answer: ApiResponse<Answer>, status?: number) {
  if (status) expect(answer.status).toBe(status);
  expect(answer.status).toBeGreaterThanOrEqual(400);
  expect(answer.status).toBeLessThan(500);
  expect(Object.keys(answer.body).sort()).toEqual(["error", "error_description"]);
  expect(answer.body.error_description).not.toMatch(/\n\s+at |Error:|\.ts:\d|TypeError|SyntaxError/);
  expect(answer.headers.get("Cache-Control")).toContain("no-store");
}

describe("bad input gets a clear 4xx and changes nothing", () => {
  it("refuses malformed JSON, wrong media types and wrong shapes on the agent API", async () => {
    const { apiKey } = await newAgent();
    const auth = bearer(apiKey);
    expectCleanError(await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", { headers: { ...auth, "Content-Type": "application/json" }, body: "{nope" }), 400);
    expectCleanError(await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", { headers: { ...auth, "Content-Type": "text/plain" }, body: "{}" }), 415);
    expectCleanError(await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", { headers: auth, body: "{}" }), 415);
    expectCleanError(await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", { headers: auth, json: [] }), 400);
    expectCleanError(await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", { headers: auth, json: null }), 400);
    expectCleanError(await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", { headers: { ...auth, "Content-Type": "application/json" }, body: new Uint8Array([0xff, 0xfe, 0x7b]) }), 400);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ vault_key: "k" }, "description"],
      [{ description: "", vault_key: "k" }, "description"],
      [{ description: "x".repeat(201), vault_key: "k" }, "description"],
      [{ description: "d" }, "vault_key"],
      [{ description: "d", vault_key: "-starts-with-dash" }, "vault_key"],
      [{ description: "d", vault_key: "has space" }, "vault_key"],
      [{ description: "d", vault_key: "k".repeat(129) }, "vault_key"],
      [{ description: "d", vault_key: "k", hint: "sms" }, "hint"],
      [{ description: "d", vault_key: "k", public_key: "not-an-object" }, "public_key"],
      [{ description: "d", vault_key: "k", public_key: { kty: "RSA", n: "x", e: "AQAB" } }, "public_key"],
      [{ description: "d", vault_key: "k", public_key: { kty: "EC", crv: "P-256", x: "A".repeat(43), y: "A".repeat(43) } }, "public_key"],
      [{ description: "d", vault_key: "k", public_key: { kty: "EC", crv: "P-256", x: "A".repeat(43), y: "A".repeat(43), d: "A".repeat(43) } }, "public_key"],
    ];
    for (const [json, field] of cases) {
      const answer = await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", { headers: auth, json });
      expectCleanError(answer, 400);
      expect(answer.body.error).toBe("invalid_request");
      expect(answer.body.error_description).toContain(field);
    }
    // None of those took an active slot: five requests still fit.
    for (let i = 0; i < 5; i++) expect((await requestCredential(apiKey)).status).toBe(200);
  });

  it("refuses oversized bodies with 413 without reading them", async () => {
    const { apiKey } = await newAgent();
    expectCleanError(await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", { headers: bearer(apiKey), json: { description: "x".repeat(20_000), vault_key: "k" } }), 413);
    expectCleanError(await call<PollAnswer>("POST", "/v1/credentials/poll", { json: { device_code: "x".repeat(20_000) } }), 413);
    expectCleanError(await call<Answer<LookupAnswerBody>>("POST", "/v1/approvals/lookup", { json: { user_code: "x".repeat(10_000), email: "e" } }), 413);
    expectCleanError(await call<Answer<AccountBody>>("POST", "/v1/admin/accounts", { headers: admin, json: { name: "x".repeat(10_000), operator_email: "a@b.c" } }), 413);
  });

  it("refuses broken authorization headers with 401 invalid_client", async () => {
    for (const header of ["", "Bearer", "Bearer ", "Basic abc", "Bearer kf1.acc_x.agt_y.z", "Bearer \u00e9", "bearer kf1", `Bearer ${"k".repeat(5000)}`]) {
      const answer = await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", {
        headers: header ? { Authorization: header } : {},
        json: { description: "d", vault_key: "k" },
      });
      expectCleanError(answer, 401);
      expect(answer.body.error).toBe("invalid_client");
    }
  });

  it("answers poll errors for malformed codes and bodies", async () => {
    expectCleanError(await call<PollAnswer>("POST", "/v1/credentials/poll", { json: {} }), 400);
    expectCleanError(await call<PollAnswer>("POST", "/v1/credentials/poll", { json: { device_code: 12 } }), 400);
    const malformed = await call<PollAnswer>("POST", "/v1/credentials/poll", { json: { device_code: "eyJhbGciOiJub25lIn0.e30." } });
    expectCleanError(malformed, 400);
    expect(malformed.body.error).toBe("invalid_grant");
  });

  it("answers unknown paths 404 and wrong methods 405, in the same shape", async () => {
    expectCleanError(await call<Answer>("GET", "/v1/nothing-here"), 404);
    const wrongMethod = await call<Answer>("GET", "/v1/credentials/request");
    expectCleanError(wrongMethod, 405);
    expect(wrongMethod.headers.get("Allow")).toBe("POST");
    expectCleanError(await call<Answer>("DELETE", "/oauth/token"), 405);
  });

  it("refuses a forged device code or auth_req_id (one character of a real tag changed) on every poll endpoint", async () => {
    const { agentId, apiKey, operatorEmail } = await newAgent();
    const client = { Authorization: `Basic ${btoa(`${agentId}:${apiKey}`)}` };
    const deviceCode = await forgeHandle((await requestCredential(apiKey)).body.device_code);
    const started = await call<Answer<BackchannelAuthenticationBody>>("POST", "/oauth/bc-authorize", {
      headers: client,
      form: { login_hint: operatorEmail, description: "AWS key", vault_key: "aws" },
    });
    const authReqId = await forgeHandle(started.body.auth_req_id);
    const answers = [
      await call<PollAnswer>("POST", "/v1/credentials/poll", { json: { device_code: deviceCode } }),
      await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: client, form: { grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: deviceCode } }),
      await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: client, form: { grant_type: "urn:openid:params:grant-type:ciba", auth_req_id: authReqId } }),
    ];
    for (const answer of answers) {
      expectCleanError(answer, 400);
      expect(answer.body.error).toBe("invalid_grant");
    }
  });
});
