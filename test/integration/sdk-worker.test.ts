// The SDK inside workerd talking to the real worker in-process (its fetch handler as the SDK's
// `fetch`): the same code path an agent running on Workers would take.
import { exports } from "cloudflare:workers";
import { CompactEncrypt, importJWK } from "jose";
import { describe, expect, it } from "vitest";
import { createClient } from "../../sdk/src/index";
import type { FetchLike } from "../../sdk/src/http";
import { fakeClock } from "../unit/sdk-fakes";
import { call, lookupAs, newAgent, type Answer } from "./support/api";
import type { DecideAnswerBody } from "../../core/wire";

const BASE_URL = "https://keyferry.test";
const workerFetch: FetchLike = (input, init) => exports.default.fetch(new Request(input, init));

describe("sdk against the worker inside workerd", () => {
  it("requests, receives the end-to-end encrypted credential and vaults it", async () => {
    const { apiKey, operatorEmail } = await newAgent(`op-${crypto.randomUUID()}@example.com`);
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

    const found = await lookupAs(req.userCode!, operatorEmail);
    expect(found.status).toBe(200);
    const key = await importJWK(found.body.request.encryption_key, "ECDH-ES+A256KW");
    const jwe = await new CompactEncrypt(new TextEncoder().encode("sk_live_workerd"))
      .setProtectedHeader({ alg: "ECDH-ES+A256KW", enc: "A256GCM" })
      .encrypt(key);
    const decided = await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", {
      headers: { Cookie: found.cookie },
      json: { approval_token: found.body.approval_token, decision: "approve", credential_jwe: jwe },
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
