/**
 * The polling endpoints are matched before itty-router's table (worker/router.ts). Whichever way a
 * request is dispatched, it must be answered the same: the same codes, the same shape, the same 405s,
 * and an unexpected failure rendered by the one catch as a logged 500 that says nothing of it.
 */
import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../worker/index";
import { bearer, call, newAgent, poll, requestCredential, type Answer, type ApiResponse, type PollAnswer } from "./support/api";
import type { TokenBody } from "../../core/wire";

const expectShape = (answer: ApiResponse<Answer>, status: number, error: string) => {
  expect(answer.status).toBe(status);
  expect(answer.body.error).toBe(error);
  expect(Object.keys(answer.body).sort()).toEqual(["error", "error_description"]);
  expect(answer.headers.get("Cache-Control")).toContain("no-store");
};

describe("polling endpoints dispatched ahead of the route table", () => {
  it("answers a pending poll the same on the exact path and on a spelling only the table matches", async () => {
    const { apiKey } = await newAgent();
    const { body } = await requestCredential(apiKey);
    expectShape(await poll(body.device_code), 400, "authorization_pending");
    // A trailing slash is not taken by the fast path; the table still routes it to the same handler.
    const viaTable = await call<Answer>("POST", "/v1/credentials/poll/", { json: { device_code: body.device_code } });
    expectShape(viaTable, 400, "slow_down");
  });

  it("names device_code for every body that is not an object with a string device_code", async () => {
    for (const json of [[], null, 7, "kfd1", { device_code: null }, { device_code: ["x"] }, { code: "x" }]) {
      const answer = await call<PollAnswer>("POST", "/v1/credentials/poll", { json });
      expectShape(answer, 400, "invalid_request");
      expect(answer.body.error_description).toBe("device_code: must be a string");
    }
  });

  it("keeps the media type and JSON checks (size: bad-input.test.ts)", async () => {
    expectShape(await call<PollAnswer>("POST", "/v1/credentials/poll", { headers: { "Content-Type": "text/plain" }, body: "{}" }), 415, "invalid_request");
    expectShape(await call<PollAnswer>("POST", "/v1/credentials/poll", { headers: { "Content-Type": "application/json" }, body: "{nope" }), 400, "invalid_request");
    expectShape(await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: { "Content-Type": "application/json" }, body: "{}" }), 415, "invalid_request");
  });

  it("reads the poll body leniently: bytes that are not UTF-8 can only make the code unknown", async () => {
    const { apiKey } = await newAgent();
    const { body } = await requestCredential(apiKey);
    const json = { "Content-Type": "application/json" };
    const bytes = (text: string, at: number) => {
      const encoded = new TextEncoder().encode(text);
      encoded[at] = 0xff;
      return encoded;
    };
    const code = JSON.stringify({ device_code: body.device_code });
    // One byte of the real code replaced by an invalid one: refused as an unknown code, not decoded into it.
    expectShape(await call<PollAnswer>("POST", "/v1/credentials/poll", { headers: json, body: bytes(code, code.length - 3) }), 400, "invalid_grant");
    expectShape(await call<PollAnswer>("POST", "/v1/credentials/poll", { headers: json, body: bytes(code, 0) }), 400, "invalid_request");
    // The request itself was not touched: its first real poll is still pending, not slow_down.
    expectShape(await poll(body.device_code), 400, "authorization_pending");
  });

  it("leaves other methods and look-alike paths to the table: 405 with Allow, 404", async () => {
    for (const path of ["/v1/credentials/poll", "/oauth/token"]) {
      const answer = await call<Answer>("GET", path);
      expectShape(answer, 405, "method_not_allowed");
      expect(answer.headers.get("Allow")).toBe("POST");
    }
    for (const path of ["/__proto__", "/constructor", "/v1/credentials/POLL", "/v1/credentials/poll/x"]) {
      expectShape(await call("POST", path, { json: {} }), 404, "not_found");
    }
  });

  it("renders an unexpected failure on either path as 500 server_error, without its message", async () => {
    const { agentId, apiKey } = await newAgent();
    const { body } = await requestCredential(apiKey);
    // Request and account objects that fail as a broken binding would: each path below reaches one.
    const fail = { idFromName: () => { throw new Error("internal detail 7f3a"); } };
    const broken = { ...env, REQUESTS: fail, ACCOUNTS: fail } as unknown as Env;
    const form = { grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: body.device_code, client_id: agentId };
    const requests = [
      new Request("https://keyferry.test/v1/credentials/poll", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ device_code: body.device_code }) }),
      new Request("https://keyferry.test/v1/credentials/poll/", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ device_code: body.device_code }) }),
      new Request("https://keyferry.test/oauth/token", { method: "POST", headers: { ...bearer(apiKey), "Content-Type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(form) }),
      new Request("https://keyferry.test/v1/credentials/request", { method: "POST", headers: { ...bearer(apiKey), "Content-Type": "application/json" }, body: JSON.stringify({ description: "d", vault_key: "v" }) }),
    ];
    for (const request of requests) {
      const ctx = createExecutionContext();
      const response = await worker.fetch(request, broken, ctx);
      await waitOnExecutionContext(ctx);
      const text = await response.text();
      expect(response.status, request.url).toBe(500);
      expect(JSON.parse(text), request.url).toEqual({ error: "server_error", error_description: "The server could not complete the request." });
      expect(text).not.toContain("7f3a");
      expect(response.headers.get("Cache-Control")).toContain("no-store");
    }
  });
});
