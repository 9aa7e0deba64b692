import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { exportJWK, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import { approve, auditUntil, bearer, call, encryptForRequest, lookupAs, newAgent, normalized, type Answer, type PollAnswer } from "./support/api";
import { ORIGIN, dpopKey, proof, waitProof, type TestDpopKey } from "./support/dpop";
import { deviceCodeProtocols, openWait } from "./support/wait";
import type { BackchannelAuthenticationBody, DeviceAuthorizationBody, TokenBody } from "../../core/wire";
import type { KeptAnswer } from "../../durable-objects/request/request-types";
import { requestStub } from "../../worker/stubs";
import { patchRequestRow, storedRow, toTableLayout } from "./support/request-row";

/**
 * README, "Nothing lost to a dropped response": a DPoP-bound delivery is kept for
 * DELIVERY_GRACE_SECONDS (60 here) and served again to a fresh proof by the bound key; anything else
 * is refused with the replay alarm; `POST /v1/credentials/ack` or the alarm at the window's end erase it.
 */
const requestObject = (userCode: string) => requestStub(env, normalized(userCode));
const ACK = `${ORIGIN}/v1/credentials/ack`;

const pollWith = (deviceCode: string, dpop?: string) =>
  call<PollAnswer>("POST", "/v1/credentials/poll", { json: { device_code: deviceCode }, headers: dpop ? { DPoP: dpop } : {} });
const ack = async (body: unknown, key?: TestDpopKey) =>
  call<Answer>("POST", "/v1/credentials/ack", { json: body, headers: key ? { DPoP: await proof(key, { htu: ACK }) } : {} });

/** The row as stored: the payload column (emptied at every delivery), the kept answer and the window's end. */
const stored = (userCode: string) =>
  runInDurableObject(requestObject(userCode), (_i, state) => {
    const { payload, kept, grace_ends_at, expires_at } = storedRow(state);
    return { payload, grace_ends_at, expires_at, kept: kept === null ? null : (JSON.parse(kept) as KeptAnswer) };
  });

async function boundRequest(body: Record<string, unknown> = {}) {
  const agent = await newAgent();
  const key = await dpopKey();
  const issued = (await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", {
    headers: bearer(agent.apiKey),
    json: { description: "Stripe", vault_key: "stripe", dpop_jkt: key.jkt, ...body },
  })).body;
  return { ...agent, key, issued };
}

const types = (events: ReadonlyArray<{ type?: unknown }>) => events.map((e) => String(e.type));

describe("the grace window of a bound delivery", { timeout: 60_000 }, () => {
  it("serves the bound key the same 200 again without an alarm, refuses any other poll with one, and ends at ack", async () => {
    const { key, issued, operatorEmail, accountId } = await boundRequest();
    await approve(issued.user_code, operatorEmail, "sk_grace");
    const first = await proof(key);
    const delivered = await pollWith(issued.device_code, first);
    expect(delivered.status).toBe(200);

    const again = await pollWith(issued.device_code, await proof(key));
    expect(again.status).toBe(200);
    expect(again.body).toEqual(delivered.body);
    expect(again.body.credential_value).toBe("sk_grace");
    // Plain mode keeps what it delivered from: the JWE to the request's key pair, never the clear value.
    const { payload, kept } = await stored(issued.user_code);
    expect(payload).toBeNull();
    expect(kept?.payload).toMatch(/^ey[\w-]*\.[\w-]*\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(kept?.payload).not.toContain("sk_grace");
    expect(kept?.wrappedPrivateKey).toEqual(expect.any(String));
    const redelivered = await auditUntil(accountId, (e) => types(e).includes("redelivered"));
    expect(types(redelivered)).not.toContain("replay_detected");

    // Another key, no proof, a proof already used: refused, and the operator hears of it once.
    const other = await dpopKey();
    for (const dpop of [await proof(other), undefined, first]) expect((await pollWith(issued.device_code, dpop)).body.error).toBe("invalid_grant");
    const alarmed = await auditUntil(accountId, (e) => types(e).includes("replay_detected"));
    expect(types(alarmed).filter((t) => t === "replay_detected")).toHaveLength(1);
    // Someone else holding the code takes nothing from the agent that still needs its answer.
    expect((await pollWith(issued.device_code, await proof(key))).body.credential_value).toBe("sk_grace");

    // Another key cannot end the window; the bound key can, at once, and saying it again changes nothing.
    expect((await ack({ device_code: issued.device_code }, other)).body.error).toBe("invalid_dpop_proof");
    expect((await ack({ device_code: issued.device_code }, key)).status).toBe(204);
    expect(await stored(issued.user_code)).toMatchObject({ payload: null, kept: null, grace_ends_at: null });
    expect((await pollWith(issued.device_code, await proof(key))).body.error).toBe("invalid_grant");
    expect((await ack({ device_code: issued.device_code }, key)).status).toBe(204);
  });

  it("refuses a wait by the bound key in the window without the alarm (its poll gets the kept answer); another key's wait raises it", async () => {
    const { key, issued, operatorEmail, accountId, apiKey } = await boundRequest();
    await approve(issued.user_code, operatorEmail, "sk_wait");
    expect((await pollWith(issued.device_code, await proof(key))).status).toBe(200);
    const own = await openWait(deviceCodeProtocols(issued.device_code, await waitProof(key)));
    expect({ status: own.status, body: own.body }).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
    expect((await pollWith(issued.device_code, await proof(key))).body.credential_value).toBe("sk_wait");
    // A later event of the same account, so the log has caught up with the wait.
    await call("POST", "/v1/credentials/request", { headers: bearer(apiKey), json: { description: "later", vault_key: "later" } });
    const before = await auditUntil(accountId, (e) => types(e).filter((t) => t === "requested").length === 2);
    expect(types(before)).not.toContain("replay_detected");
    expect((await openWait(deviceCodeProtocols(issued.device_code, await waitProof(await dpopKey())))).body).toMatchObject({ error: "invalid_grant" });
    const after = await auditUntil(accountId, (e) => types(e).includes("replay_detected"));
    expect(types(after).filter((t) => t === "replay_detected")).toHaveLength(1);
  });

  it("keeps an end-to-end JWE as delivered and serves it again on /oauth/token as a DPoP token", async () => {
    const agentKeys = await generateKeyPair("ECDH-ES", { crv: "P-256" });
    const { kty, crv, x, y } = await exportJWK(agentKeys.publicKey);
    const { key, issued, operatorEmail, agentId, apiKey } = await boundRequest({ public_key: { kty, crv, x, y } });
    const looked = await lookupAs(issued.user_code, operatorEmail);
    const jwe = await encryptForRequest(looked.body.request.encryption_key, "sk_e2e");
    await call("POST", "/v1/approvals/decide", { headers: { Cookie: looked.cookie! }, json: { approval_token: looked.body.approval_token, decision: "approve", credential_jwe: jwe } });

    const basic = { Authorization: `Basic ${btoa(`${agentId}:${apiKey}`)}` };
    const form = { grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: issued.device_code };
    const token = async (k: TestDpopKey) => call<Answer<TokenBody>>("POST", "/oauth/token", { headers: { ...basic, DPoP: await proof(k, { htu: `${ORIGIN}/oauth/token` }) }, form });
    const delivered = await token(key);
    expect(delivered.body).toMatchObject({ access_token: jwe, token_type: "DPoP" });
    expect((await stored(issued.user_code)).kept).toEqual({ payload: jwe, publicKey: { kty, crv, x, y }, wrappedPrivateKey: null });
    expect((await token(key)).body).toEqual(delivered.body);
    expect((await token(await dpopKey())).body.error).toBe("invalid_grant");
  });

  it("erases the kept answer at the window's end: the bound key then gets invalid_grant, and the tombstone stays until expiry", async () => {
    const { key, issued, operatorEmail, accountId } = await boundRequest();
    await approve(issued.user_code, operatorEmail, "sk_window");
    expect((await pollWith(issued.device_code, await proof(key))).status).toBe(200);
    const stub = requestObject(issued.user_code);
    const { grace_ends_at: graceEndsAt, expires_at: expiresAt } = await stored(issued.user_code);
    expect(graceEndsAt).toBeGreaterThan(Date.now() + 50_000);
    expect(await runInDurableObject(stub, (_i, state) => state.storage.getAlarm())).toBe(graceEndsAt);

    // The window is made to end now; the alarm set for it has not run yet: the poll already answers as after it.
    await runInDurableObject(stub, (_i, state) => patchRequestRow(state, { grace_ends_at: Date.now() - 1 }));
    await evictDurableObject(stub);
    expect((await pollWith(issued.device_code, await proof(key))).body.error).toBe("invalid_grant");
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stored(issued.user_code)).toMatchObject({ payload: null, kept: null, grace_ends_at: null });
    expect(await runInDurableObject(stub, (_i, state) => state.storage.getAlarm())).toBe(expiresAt);
    expect((await pollWith(issued.device_code, await proof(key))).body.error).toBe("invalid_grant");
    const events = await auditUntil(accountId, (e) => types(e).includes("replay_detected"));
    expect(types(events)).not.toContain("redelivered");
  });

  it("leaves an unbound request to single delivery, with nothing to acknowledge", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const key = await dpopKey();
    const issued = (await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", { headers: bearer(apiKey), json: { description: "d", vault_key: "v" } })).body;
    await approve(issued.user_code, operatorEmail, "sk_once");
    expect((await pollWith(issued.device_code)).status).toBe(200);
    expect(await stored(issued.user_code)).toMatchObject({ payload: null, kept: null, grace_ends_at: null });
    expect((await pollWith(issued.device_code, await proof(key))).body.error).toBe("invalid_grant");
    expect((await ack({ device_code: issued.device_code }, key)).body).toMatchObject({ error: "invalid_grant", error_description: expect.stringContaining("not bound") });
  });
});

describe("a bound CIBA request", { timeout: 60_000 }, () => {
  it("redelivers on /oauth/token to the same client and key, and is acknowledged by its auth_req_id", async () => {
    const { apiKey, agentId } = await newAgent();
    const key = await dpopKey();
    const basic = { Authorization: `Basic ${btoa(`${agentId}:${apiKey}`)}` };
    const started = await call<Answer<BackchannelAuthenticationBody>>("POST", "/oauth/bc-authorize", { headers: basic, form: { description: "AWS", vault_key: "aws", dpop_jkt: key.jkt } });
    const authReqId = started.body.auth_req_id;
    // Approved as the pushed link would (the request's own object, addressed by the handle's user code).
    const stub = requestStub(env, authReqId.split(".")[1]!);
    const details = await runInDurableObject(stub, (_i, state) => JSON.parse(storedRow(state).details));
    const actor = { ip: "192.0.2.1", userAgent: "test" };
    expect((await stub.lookup({ email: null, linkRequestId: details.requestId, sessionHash: "s1", actor })).reason).toBe("ok");
    const payload = await encryptForRequest(details.encryptionKey, "AKIA-kept");
    expect((await stub.decide({ sessionHash: "s1", decision: "approve", payload, payloadSha256: null, webauthn: null, party: { rpId: "keyferry.test", origin: ORIGIN }, actor, requestId: details.requestId })).reason).toBe("approved");

    const form = { grant_type: "urn:openid:params:grant-type:ciba", auth_req_id: authReqId };
    const token = async () => call<Answer<TokenBody>>("POST", "/oauth/token", { headers: { ...basic, DPoP: await proof(key, { htu: `${ORIGIN}/oauth/token` }) }, form });
    expect((await token()).body).toMatchObject({ access_token: "AKIA-kept", token_type: "DPoP" });
    expect((await token()).body).toMatchObject({ access_token: "AKIA-kept", token_type: "DPoP" });
    expect((await ack({ auth_req_id: authReqId }, key)).status).toBe(204);
    expect((await token()).body.error).toBe("invalid_grant");
  });
});

describe("POST /v1/credentials/ack refuses bad input in the error shape, changing nothing", { timeout: 60_000 }, () => {
  it("answers 400 for a malformed body, a missing or bad proof, a forged code or an undelivered request", async () => {
    const { key, issued, operatorEmail } = await boundRequest();
    const code = issued.device_code;
    const refusals: Array<[unknown, TestDpopKey | undefined, string]> = [
      [{}, key, "invalid_request"],
      [{ device_code: 7 }, key, "invalid_request"],
      [{ device_code: "" }, key, "invalid_request"],
      [{ device_code: code, auth_req_id: "x" }, key, "invalid_request"],
      [[code], key, "invalid_request"],
      [{ device_code: code }, undefined, "invalid_dpop_proof"],
      [{ device_code: `${code.slice(0, -2)}xx` }, key, "invalid_grant"],
      [{ auth_req_id: code }, key, "invalid_grant"],
      [{ device_code: code }, key, "invalid_grant"],
    ];
    for (const [body, k, error] of refusals) {
      const answer = await ack(body, k);
      expect({ body, status: answer.status, error: answer.body.error, described: typeof answer.body.error_description }).toEqual({ body, status: 400, error, described: "string" });
    }
    const notJson = await call<Answer>("POST", "/v1/credentials/ack", { body: "device_code=x", headers: { "Content-Type": "application/json", DPoP: await proof(key, { htu: ACK }) } });
    expect(notJson.body.error).toBe("invalid_request");
    // None of it touched the request: it delivers, and keeps its answer, as if nothing had happened.
    await approve(issued.user_code, operatorEmail, "sk_untouched");
    expect((await pollWith(code, await proof(key))).body.credential_value).toBe("sk_untouched");
    expect((await pollWith(code, await proof(key))).body.credential_value).toBe("sk_untouched");
  });
});

describe("a request made before the grace window (v1.1: its table without the window's columns)", { timeout: 60_000 }, () => {
  it("is migrated when its object loads, and keeps its bound answer like any other", async () => {
    const { key, issued, operatorEmail } = await boundRequest();
    const stub = requestObject(issued.user_code);
    await runInDurableObject(stub, (_i, state) => toTableLayout(state, "v1.1"));
    await evictDurableObject(stub);
    await approve(issued.user_code, operatorEmail, "sk_v11");
    expect((await pollWith(issued.device_code, await proof(key))).body.credential_value).toBe("sk_v11");
    expect((await pollWith(issued.device_code, await proof(key))).body.credential_value).toBe("sk_v11");
  });
});
