import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { approve, call, lookupAs, newAgent, normalized, poll, requestCredential, type Answer } from "./support/api";
import { authReqIdProtocols, deviceCodeProtocols, openWait } from "./support/wait";
import { patchRequestRow } from "./support/request-row";
import type { BackchannelAuthenticationBody, DecideAnswerBody } from "../../core/wire";

/** README, "Contract notes", return channel: the request's object announces the decision or the expiry, then closes 1000. */
const requestObject = (userCode: string) => env.REQUESTS.get(env.REQUESTS.idFromName(normalized(userCode)));
const basic = (id: string, secret: string) => ({ Authorization: `Basic ${btoa(`${id}:${secret}`)}` });

describe("return channel", { timeout: 30_000 }, () => {
  it("announces an approval, closes 1000, and the poll that follows is served at once", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    // A poll just before: the next one comes sooner than the interval, yet it is not slow_down.
    expect((await poll(issued.device_code)).body.error).toBe("authorization_pending");
    const waiter = await openWait(deviceCodeProtocols(issued.device_code));
    expect(waiter.status).toBe(101);
    expect(waiter.protocol).toBe("keyferry.v1");
    expect(waiter.messages).toEqual([]);

    await approve(issued.user_code, operatorEmail, "sk_live_wait");
    expect(await waiter.message).toEqual({ type: "decided", status: "approved" });
    expect(await waiter.closed).toEqual({ code: 1000 });
    expect(waiter.messages).toHaveLength(1);
    const delivered = await poll(issued.device_code);
    expect(delivered.status).toBe(200);
    expect(delivered.body.credential_value).toBe("sk_live_wait");
  });

  it("announces a denial to every waiter", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    const waiters = await Promise.all([1, 2].map(() => openWait(deviceCodeProtocols(issued.device_code))));
    const looked = await lookupAs(issued.user_code, operatorEmail);
    await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", { headers: { Cookie: looked.cookie! }, json: { approval_token: looked.body.approval_token, decision: "deny" } });
    for (const waiter of waiters) expect(await waiter.message).toEqual({ type: "decided", status: "denied" });
    expect((await poll(issued.device_code)).body.error).toBe("access_denied");
  });

  it("announces the expiry at the TTL alarm", async () => {
    const { apiKey } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    const waiter = await openWait(deviceCodeProtocols(issued.device_code));
    const stub = requestObject(issued.user_code);
    await runInDurableObject(stub, (_i, state) => patchRequestRow(state, { expires_at: Date.now() - 1 }));
    // The in-memory mirror keeps the old expiry: evict (the socket hibernates) so a fresh instance reloads it.
    await evictDurableObject(stub);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await waiter.message).toEqual({ type: "expired" });
    expect(await waiter.closed).toEqual({ code: 1000 });
  });

  it("tells a waiter that connects after the approval at once", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    await approve(issued.user_code, operatorEmail, "sk_late");
    const waiter = await openWait(deviceCodeProtocols(issued.device_code));
    expect(waiter.status).toBe(101);
    expect(await waiter.message).toEqual({ type: "decided", status: "approved" });
    expect((await poll(issued.device_code)).body.credential_value).toBe("sk_late");
  });

  it("works for a CIBA auth_req_id with the agent's API key, and refuses another agent's key", async () => {
    const { apiKey, agentId } = await newAgent();
    const other = await newAgent();
    const started = await call<Answer<BackchannelAuthenticationBody>>("POST", "/oauth/bc-authorize", { headers: basic(agentId, apiKey), form: { description: "AWS key", vault_key: "aws" } });
    const authReqId = started.body.auth_req_id as string;
    const stranger = await openWait(authReqIdProtocols(authReqId), { Authorization: `Bearer ${other.apiKey}` });
    expect(stranger.status).toBe(400);
    expect(stranger.body).toMatchObject({ error: "invalid_grant" });
    const waiter = await openWait(authReqIdProtocols(authReqId), { Authorization: `Bearer ${apiKey}` });
    expect(waiter.status).toBe(101);
    // The operator's link look-up and decision, made on the request's object as the approval routes make them.
    const userCode = authReqId.split(".")[1]!;
    const actor = { ip: "192.0.2.1", userAgent: "test" };
    const looked = await requestObject(userCode).lookup({ email: null, linkRequestId: null, sessionHash: "s1", actor });
    if (looked.reason !== "ok") throw new Error(looked.reason);
    await requestObject(userCode).decide({ sessionHash: "s1", decision: "deny", payload: null, payloadSha256: null, webauthn: null, party: { rpId: "keyferry.test", origin: "https://keyferry.test" }, actor, requestId: looked.view.requestId });
    expect(await waiter.message).toEqual({ type: "decided", status: "denied" });
  });
});
