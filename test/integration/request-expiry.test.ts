import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { signHandle } from "../../worker/handles";
import { auditUntil, call, lookupAs, newAgent, normalized, poll, requestCredential, type Answer } from "./support/api";
import { requestStub } from "../../worker/stubs";
import { sleep } from "../support/sleep";
import { expireAndRunAlarm, leftInStorage } from "./support/expiry";
import { patchRequestRow, storedRow } from "./support/request-row";
import type { DecideAnswerBody } from "../../core/wire";

const requestObject = (userCode: string) => requestStub(env, normalized(userCode));

/** Moves a live request's expiry into the past, as time would, and drops the object from memory. */
async function expireNow(userCode: string) {
  const stub = requestObject(userCode);
  await runInDurableObject(stub, (_instance, state) => patchRequestRow(state, { expires_at: Date.now() - 1 }));
  await evictDurableObject(stub);
  return stub;
}

describe("request expiry: every call checks expires_at, the alarm erases everything", () => {
  it("schedules the TTL alarm at expires_at when the request is created", async () => {
    const { apiKey } = await newAgent();
    const before = Date.now();
    const issued = await requestCredential(apiKey);
    const alarm = await runInDurableObject(requestObject(issued.body.user_code), (_i, state) => state.storage.getAlarm());
    expect(alarm).toBeGreaterThanOrEqual(before + 600_000);
    expect(alarm).toBeLessThanOrEqual(Date.now() + 600_000);
  });

  it("answers expired_token and not_found past expiry even before the alarm runs", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const issued = await requestCredential(apiKey);
    await expireNow(issued.body.user_code);
    expect((await poll(issued.body.device_code)).body.error).toBe("expired_token");
    expect((await lookupAs(issued.body.user_code, operatorEmail)).status).toBe(404);
  });

  it("erases all storage at the alarm, frees the slot, audits the expiry and keeps answering without a 500", async () => {
    const { apiKey, operatorEmail, accountId } = await newAgent();
    const issued = await requestCredential(apiKey);
    const stub = await expireNow(issued.body.user_code);
    expect(await runDurableObjectAlarm(stub)).toBe(true);

    expect(await leftInStorage(stub)).toEqual({ tables: [], keys: [] });
    // The object is still in memory with its storage gone: calls must not fail.
    expect((await poll(issued.body.device_code)).body.error).toBe("invalid_grant");
    expect((await lookupAs(issued.body.user_code, operatorEmail)).status).toBe(404);

    const events = await auditUntil(accountId, (e) => e.some((x) => x.type === "expired"));
    expect(events.find((x) => x.type === "expired")).toMatchObject({ agent_id: expect.stringMatching(/^agt_/), request_id: expect.stringMatching(/^req_/) });
    // Five new requests fit again: the expired one no longer holds a slot.
    for (let i = 0; i < 5; i++) expect((await requestCredential(apiKey)).status).toBe(200);
  });

  it("takes a new request under the same code in the instance that erased the last one", async () => {
    const { apiKey } = await newAgent();
    const issued = await requestCredential(apiKey);
    const stub = requestObject(issued.body.user_code);
    const { details, handle_tag: handleTag } = await runInDurableObject(stub, (_i, state) => storedRow(state));
    expect(await expireAndRunAlarm(stub)).toEqual({ ran: true, tables: [], keys: [] });
    // Not evicted: the instance whose storage was just erased stores the next request.
    const expiresAt = Date.now() + 600_000;
    expect(await stub.create({ details: JSON.parse(details), handleTag, expiresAt, interval: 5 })).toEqual({ reason: "created" });
    expect((await poll(issued.body.device_code)).body.error).toBe("authorization_pending");
    expect(await leftInStorage(stub)).toEqual({ tables: [], keys: ["request"] });
  });

  it("reschedules a premature alarm instead of erasing a live request", async () => {
    const { apiKey } = await newAgent();
    const issued = await requestCredential(apiKey);
    const stub = requestObject(issued.body.user_code);
    await runInDurableObject(stub, (_i, state) => state.storage.setAlarm(Date.now()));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await poll(issued.body.device_code)).body.error).toBe("authorization_pending");
  });

  it("erases a delivered request at once but for a tombstone (no payload, no key, no code), which the alarm erases at expiry", async () => {
    const { apiKey, operatorEmail } = await newAgent();
    const issued = await requestCredential(apiKey);
    const looked = await lookupAs(issued.body.user_code, operatorEmail);
    await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", {
      headers: { Cookie: looked.cookie! },
      json: { approval_token: looked.body.approval_token, decision: "approve", credential_value: "sk_erase_me" },
    });
    expect((await poll(issued.body.device_code)).status).toBe(200);
    const stub = requestObject(issued.body.user_code);
    const row = await runInDurableObject(stub, (_i, state) => storedRow(state));
    expect(row).toMatchObject({ status: "delivered", payload: null, claim_hash: null });
    const details: unknown = JSON.parse(row.details);
    for (const gone of ["userCode", "operatorEmail", "publicKey", "encryptionKey", "wrappedPrivateKey", "ping"]) expect(details).not.toHaveProperty(gone);
    expect(JSON.stringify(row)).not.toContain("sk_erase_me");
    // The alarm still stands at the original expiry, and erases the tombstone then.
    expect(await runInDurableObject(stub, (_i, state) => state.storage.getAlarm())).toBe(row.expires_at);
    expect(await expireAndRunAlarm(stub)).toEqual({ ran: true, tables: [], keys: [] });
  });

  it("forgets the last poll on eviction, but not a raised interval", async () => {
    const { apiKey } = await newAgent();
    const issued = await requestCredential(apiKey);
    await poll(issued.body.device_code);
    expect((await poll(issued.body.device_code)).body.error).toBe("slow_down");
    await evictDurableObject(requestObject(issued.body.user_code));
    expect((await poll(issued.body.device_code)).body.error).toBe("authorization_pending");
    expect((await poll(issued.body.device_code)).body.error_description).toContain("15 seconds");
  });
});

describe("expiry from the device code itself", () => {
  it("answers expired_token from the code itself, to the millisecond, once no object holds the request", async () => {
    const expiresAt = Date.now() + 30;
    const secret = crypto.getRandomValues(new Uint8Array(32));
    const { handle: deviceCode } = await signHandle(env, "device_code", { userCode: "BCDFGHJK", expiresAt, secret });
    await sleep(40);
    // No request object holds the code any more (the alarm erased it), yet the code says when it expired.
    expect((await poll(deviceCode)).body.error).toBe("expired_token");
  });
});
