import { env } from "cloudflare:workers";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { approve, lookupAs, newAgent, normalized, poll, requestCredential } from "./support/api";
import { deviceCodeProtocols, openWait } from "./support/wait";

/** RequestDO rules from the hardening review (issue 11): decisions bound to a request ID, idempotent revocation. */
const requestObject = (userCode: string) => env.REQUESTS.get(env.REQUESTS.idFromName(normalized(userCode)));
const actor = { ip: "192.0.2.1", userAgent: "test" };

describe("RequestDO rules", { timeout: 30_000 }, () => {
  it("refuses a decision whose approval token names another request, and accepts its own", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    const stub = requestObject(issued.user_code);
    expect((await stub.lookup({ email: operatorEmail, linkRequestId: null, sessionHash: "s1", actor })).reason).toBe("ok");
    const other = await stub.decide({ sessionHash: "s1", decision: "approve", payload: "x", actor, requestId: "req_someoneelse" });
    expect(other).toEqual({ reason: "invalid_token" });
    const view = await stub.lookup({ email: operatorEmail, linkRequestId: null, sessionHash: "s1", actor });
    if (view.reason !== "ok") throw new Error(view.reason);
    expect((await stub.decide({ sessionHash: "s1", decision: "deny", payload: null, actor, requestId: view.view.requestId })).reason).toBe("denied");
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

describe("a request made before v1.1", { timeout: 30_000 }, () => {
  it("is migrated when its object loads, and still looks up, locks and delivers", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    const stub = requestObject(issued.user_code);
    // The v1 shape: no replay_reported column, no dpop_jti table.
    await runInDurableObject(stub, (_i, state) => {
      state.storage.sql.exec("DROP TABLE IF EXISTS dpop_jti");
      state.storage.sql.exec("ALTER TABLE request DROP COLUMN replay_reported");
    });
    await evictDurableObject(stub);
    // A wrong email is answered as an unknown code (README "Contract notes"), and still counts.
    expect((await lookupAs(issued.user_code, "wrong@example.com")).status).toBe(404);
    await approve(issued.user_code, operatorEmail, "sk_v1");
    expect((await poll(issued.device_code)).body.credential_value).toBe("sk_v1");
    expect((await poll(issued.device_code)).body.error).toBe("invalid_grant");
  });
});
