// The SDK inside workerd talking to the real worker in-process (its fetch handler as the SDK's
// `fetch`): the same code path an agent running on Workers would take.
import { exports } from "cloudflare:workers";
import { CompactEncrypt, importJWK } from "jose";
import { describe, expect, it } from "vitest";
import { createClient } from "../../sdk/src/index";
import type { FetchLike } from "../../sdk/src/http";
import { fakeClock } from "./sdk-fakes";

const BASE_URL = "https://keyferry.test";
const admin = { authorization: "Bearer test-admin-token-of-at-least-32-characters", "content-type": "application/json" };
const workerFetch: FetchLike = (input, init) => exports.default.fetch(new Request(input, init));

async function post(path: string, body: unknown, headers: Record<string, string> = { "content-type": "application/json" }) {
  const response = await workerFetch(`${BASE_URL}${path}`, { method: "POST", headers, body: JSON.stringify(body) });
  return { response, body: (await response.json()) as Record<string, any> };
}

async function newAgent() {
  const operatorEmail = `op-${crypto.randomUUID()}@example.com`;
  const account = await post("/v1/admin/accounts", { name: "SDK", operator_email: operatorEmail }, admin);
  const agent = await post(`/v1/admin/accounts/${account.body.account_id}/agents`, { name: "sdk-bot" }, admin);
  return { apiKey: agent.body.api_key as string, operatorEmail };
}

describe("sdk against the worker inside workerd", () => {
  it("requests, receives the end-to-end encrypted credential and vaults it", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const clock = fakeClock(Date.now());
    const ferry = createClient({
      baseUrl: BASE_URL,
      apiKey,
      masterSeed: crypto.getRandomValues(new Uint8Array(32)),
      fetch: workerFetch,
      now: clock.now,
      sleep: clock.sleep,
    });
    const req = await ferry.credentials.request({ description: "Stripe secret key", vaultKey: "stripe-sk" });

    const found = await post("/v1/approvals/lookup", { user_code: req.userCode, email: operatorEmail }, {
      "content-type": "application/json",
      "cf-connecting-ip": "10.9.8.7",
    });
    expect(found.response.status).toBe(200);
    const cookie = found.response.headers.get("set-cookie")!.split(";")[0]!;
    const key = await importJWK(found.body.request.encryption_key, "ECDH-ES+A256KW");
    const jwe = await new CompactEncrypt(new TextEncoder().encode("sk_live_workerd"))
      .setProtectedHeader({ alg: "ECDH-ES+A256KW", enc: "A256GCM" })
      .encrypt(key);
    const decided = await post("/v1/approvals/decide", { approval_token: found.body.approval_token, decision: "approve", credential_jwe: jwe }, {
      "content-type": "application/json",
      cookie,
    });
    expect(decided.body).toEqual({ status: "approved" });

    const approved = await ferry.credentials.waitForApproval(req.deviceCode, { timeout: 60_000 });
    expect(approved.credentialValue).toBe("sk_live_workerd");

    await ferry.vault.put(approved.vaultKey, approved.credentialValue);
    expect(await ferry.vault.get("stripe-sk")).toBe("sk_live_workerd");
    expect((await ferry.vault.list()).map((item) => item.vaultKey)).toEqual(["stripe-sk"]);
    await ferry.vault.delete("stripe-sk");
    expect(await ferry.vault.list()).toEqual([]);
  });
});
