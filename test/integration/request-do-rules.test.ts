import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { approve, lookupAs, newAgent, normalized, poll, requestCredential } from "./support/api";
import { deviceCodeProtocols, openWait } from "./support/wait";
import { storedRow } from "./support/request-row";

/** RequestDO rules from the hardening review (issue 11): decisions bound to a request ID, idempotent revocation. */
const requestObject = (userCode: string) => env.REQUESTS.get(env.REQUESTS.idFromName(normalized(userCode)));
const actor = { ip: "192.0.2.1", userAgent: "test" };
const party = { rpId: "keyferry.test", origin: "https://keyferry.test" };

describe("RequestDO rules", { timeout: 30_000 }, () => {
  it("refuses a decision whose approval token names another request, and accepts its own", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    const stub = requestObject(issued.user_code);
    expect((await stub.lookup({ email: operatorEmail, linkRequestId: null, sessionHash: "s1", actor })).reason).toBe("ok");
    const other = await stub.decide({ sessionHash: "s1", decision: "approve", payload: "x", payloadSha256: null, webauthn: null, party, actor, requestId: "req_someoneelse" });
    expect(other).toEqual({ reason: "invalid_token" });
    const view = await stub.lookup({ email: operatorEmail, linkRequestId: null, sessionHash: "s1", actor });
    if (view.reason !== "ok") throw new Error(view.reason);
    expect((await stub.decide({ sessionHash: "s1", decision: "deny", payload: null, payloadSha256: null, webauthn: null, party, actor, requestId: view.view.requestId })).reason).toBe("denied");
  });

  it("revokes idempotently: twice, after delivery and where no request exists, never throwing", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const pending = (await requestCredential(apiKey)).body;
    const waiter = await openWait(deviceCodeProtocols(pending.device_code));
    await requestObject(pending.user_code).revoke();
    expect(await waiter.message).toEqual({ type: "decided", status: "denied" });
    await requestObject(pending.user_code).revoke();
    expect((await poll(pending.device_code)).body.error).toBe("access_denied");

    const delivered = (await requestCredential(apiKey)).body;
    await approve(delivered.user_code, operatorEmail, "sk_kept");
    expect((await poll(delivered.device_code)).status).toBe(200);
    await requestObject(delivered.user_code).revoke();
    expect((await poll(delivered.device_code)).body.error).toBe("invalid_grant");

    await requestObject("BBBBBBBB").revoke();
    expect((await lookupAs("BBBB-BBBB", operatorEmail)).status).toBe(404);
  });
});

describe("a delivered request's tombstone", { timeout: 30_000 }, () => {
  it("keeps who asked for what, and no payload, key, user code, operator email or ping target", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    await approve(issued.user_code, operatorEmail, "sk_gone");
    expect((await poll(issued.device_code)).status).toBe(200);
    const row = await runInDurableObject(requestObject(issued.user_code), (_i, state) => storedRow(state));
    expect(row.status).toBe("delivered");
    expect(row.payload).toBeNull();
    // An unbound delivery keeps no answer; the DPoP key's thumbprint (null here) checks a bound one's late ack.
    expect(row.kept).toBeNull();
    expect(Object.keys(JSON.parse(row.details)).sort()).toEqual(
      ["accountId", "agent", "apiKeyHash", "bindingMessage", "createdAt", "description", "dpopJkt", "protocol", "requestId", "vaultKey"],
    );
  });
});
