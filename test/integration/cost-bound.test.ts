import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { approve, auditUntil, bearer, call, lookupAs, newAgent, normalized, poll, requestCredential, type Answer } from "./support/api";
import { dpopKey, proof } from "./support/dpop";
import type { DeviceAuthorizationBody } from "../../core/wire";
import { forgeHandle, requestAccepts } from "./support/forgery";
import { deviceCodeProtocols, openWait } from "./support/wait";
import { accountStub, requestStub } from "../../worker/stubs";
import { sleep } from "../support/sleep";
import type { DecideAnswerBody } from "../../core/wire";

/**
 * What a handoff costs in Durable Object work, and proof that a misbehaving poller cannot raise it:
 * slow_down (RFC 8628 §3.5) holds a client polling as fast as it can to one served poll per interval.
 * Storage work is read from SQLite's own counter (`total_changes()`: rows inserted, updated or
 * deleted on the object's connection), so a change on the poll path that adds a write shows up here.
 */

const requestObject = (userCode: string) => requestStub(env, normalized(userCode));
const accountObject = (accountId: string) => accountStub(env, accountId);
type Stub = ReturnType<typeof requestObject> | ReturnType<typeof accountObject>;

/** Rows written so far on the object's SQLite connection. */
const rowsWritten = (stub: Stub) =>
  runInDurableObject(stub, (_instance, state) => state.storage.sql.exec<{ n: number }>("SELECT total_changes() AS n").one().n);

/** The bench's polling interval (1 s) for one request: stored, then reloaded by a fresh instance. */
async function withOneSecondInterval(userCode: string) {
  const stub = requestObject(userCode);
  await runInDurableObject(stub, (_instance, state) => void state.storage.sql.exec("UPDATE request SET interval = 1"));
  await evictDurableObject(stub);
  return stub;
}

/** Notifications still owed by the account (its outbox rows). */
const outboxSize = (stub: Stub) =>
  runInDurableObject(stub, (_instance, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM outbox").one().n);


describe("cost bound: the poll path", () => {
  it("holds a client polling as fast as it can to one served poll per interval", async () => {
    const { apiKey } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    const stub = await withOneSecondInterval(issued.user_code);
    const before = await rowsWritten(stub);

    // 8 concurrent pollers, each polling again the moment it has an answer, for 2.5 s.
    const answers: Array<{ at: number; error?: string }> = [];
    const start = Date.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (Date.now() - start < 2500) {
          const answer = await poll(issued.device_code);
          expect(answer.status).toBe(400);
          answers.push({ at: Date.now() - start, error: answer.body.error });
        }
      }),
    );
    const served = answers.filter((a) => a.error !== "slow_down");
    const slowDowns = answers.length - served.length;
    expect(answers.length).toBeGreaterThan(50);
    expect(served.map((a) => a.error)).toEqual(["authorization_pending"]);
    // Each slow_down raised the interval by 5 s for good: one row update each, and nothing else.
    const interval = await runInDurableObject(stub, (_i, state) => state.storage.sql.exec<{ interval: number }>("SELECT interval FROM request").one().interval);
    expect(interval).toBe(1 + 5 * slowDowns);
    expect((await rowsWritten(stub)) - before).toBe(slowDowns);
    // The raised interval holds after hammering stops: the next poll a second later is still early.
    await sleep(1100);
    expect((await poll(issued.device_code)).body.error).toBe("slow_down");
  });

  it("costs a well-behaved poller no storage writes at all", async () => {
    const { apiKey } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    const stub = await withOneSecondInterval(issued.user_code);
    const before = await rowsWritten(stub);
    for (let i = 0; i < 3; i++) {
      if (i > 0) await sleep(1050);
      expect((await poll(issued.device_code)).body.error).toBe("authorization_pending");
    }
    expect((await rowsWritten(stub)) - before).toBe(0);
  });

  it("never reaches a Durable Object for a forged or malformed device code", async () => {
    // A forged code is a real request's code with one character of its tag changed. The object is
    // made to accept the forged tag, so a poll that reached it would be served (and counted).
    const { apiKey } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    const forged = await forgeHandle(issued.device_code);
    const stub = requestObject(issued.user_code);
    const before = await rowsWritten(stub);
    for (const code of [forged, forged, "not-a-code", "a.b.c", "x".repeat(4000)]) {
      const answer = await poll(code);
      expect(answer.body.error).toBe("invalid_grant");
    }
    expect((await rowsWritten(stub)) - before).toBe(0);
    // And the request is untouched: once it holds its own tag again, its first poll is not early.
    await requestAccepts(issued.device_code);
    expect((await poll(issued.device_code)).body.error).toBe("authorization_pending");
  });
});

describe("cost per handoff (bench/README.md): rows written by each step", () => {
  it("issuance, look-up, approval and delivery write the rows the README states", async () => {
    const { apiKey, accountId, operatorEmail } = await newAgent();
    const account = accountObject(accountId);
    const accountBefore = await rowsWritten(account);

    // Issuance: the account takes a slot and logs `requested` (2 rows); the request object writes its row.
    // With the slot's confirmation the operator's email goes through the account's outbox
    // (durable-objects/account/notify/outbox.ts): the notice window, the outbox row, its first attempt (the row leased,
    // the alarm set to the lease's end), the acknowledgement and the alarm cleared (6 rows); and the console's
    // summary of the request on its slot (1 row, durable-objects/account/console-feed.ts).
    const issued = (await requestCredential(apiKey)).body;
    const request = requestObject(issued.user_code);
    for (let i = 0; i < 200 && (await outboxSize(account)) !== 0; i++) await sleep(25);
    for (let i = 0; i < 200 && (await rowsWritten(account)) - accountBefore < 9; i++) await sleep(25);
    expect((await rowsWritten(account)) - accountBefore).toBe(9);
    // A fresh object: its row, and the TTL alarm (kept in the object's `_cf_METADATA` table).
    const requestAfterIssue = await rowsWritten(request);
    expect(requestAfterIssue).toBe(2);

    // Look-up: the first claims the request (1 row); the account logs `looked_up` (1 row, in the background).
    const looked = await lookupAs(issued.user_code, operatorEmail);
    expect(looked.status).toBe(200);
    expect((await rowsWritten(request)) - requestAfterIssue).toBe(1);
    await auditUntil(accountId, (events) => events.some((e) => e.type === "looked_up"));

    // Approval: state and payload on the request (1 row update); the account logs `approved` and clears the
    // console's summary (2 rows).
    const beforeDecide = await rowsWritten(request);
    const accountBeforeDecide = await rowsWritten(account);
    const decided = await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", {
      headers: { Cookie: looked.cookie! },
      json: { approval_token: looked.body.approval_token, decision: "approve", credential_value: "sk_test_cost" },
    });
    expect(decided.status).toBe(200);
    expect((await rowsWritten(request)) - beforeDecide).toBe(1);
    await auditUntil(accountId, (events) => events.some((e) => e.type === "approved"));
    expect((await rowsWritten(account)) - accountBeforeDecide).toBe(2);

    // Delivery: one poll reads the payload and turns the row into a tombstone (1 row; the alarm stays to erase it
    // at expiry); the account frees the slot and logs `delivered` (2 rows).
    const accountBeforeDelivery = await rowsWritten(account);
    const beforeDelivery = await rowsWritten(request);
    const delivered = await poll(issued.device_code);
    expect(delivered.status).toBe(200);
    await auditUntil(accountId, (events) => events.some((e) => e.type === "delivered"));
    expect((await rowsWritten(request)) - beforeDelivery).toBe(1);
    expect((await rowsWritten(account)) - accountBeforeDelivery).toBe(2);
  });
});

describe(`cost of a DPoP-bound delivery's kept answer (README, "Nothing lost to a dropped response")`, () => {
  /** A request bound to a fresh DPoP key, approved; `poll` polls it with a fresh proof by that key. */
  async function approvedBoundRequest() {
    const { apiKey, operatorEmail } = await newAgent();
    const key = await dpopKey();
    const issued = (await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", { headers: bearer(apiKey), json: { description: "d", vault_key: "v", dpop_jkt: key.jkt } })).body;
    await approve(issued.user_code, operatorEmail, "sk_bound_cost");
    const poll = async () => call("POST", "/v1/credentials/poll", { json: { device_code: issued.device_code }, headers: { DPoP: await proof(key) } });
    return { key, issued, request: requestObject(issued.user_code), poll };
  }

  it("costs a bound handoff one more alarm at delivery and one row update and an alarm run at the window's end", async () => {
    const { request, poll } = await approvedBoundRequest();

    // Delivery: the row update an unbound delivery makes too (the kept answer rides in it), and the
    // alarm moved to the window's end (1 row in `_cf_METADATA`). The proof's jti goes to the key's
    // DpopJtiDO, as every bound poll's does, window or not: nothing of it is the window's cost.
    const beforeDelivery = await rowsWritten(request);
    expect((await poll()).status).toBe(200);
    expect((await rowsWritten(request)) - beforeDelivery).toBe(2);
    // The window's end: the row update that erases the kept answer, and the alarm (the one that ran is
    // cleared, the expiry's is set: 2 rows). An unbound handoff has none of these 3 nor the alarm above.
    await runInDurableObject(request, (_i, state) => void state.storage.sql.exec("UPDATE request SET grace_ends_at = 0"));
    await evictDurableObject(request);
    const beforeEnd = await rowsWritten(request);
    expect(await runDurableObjectAlarm(request)).toBe(true);
    expect((await rowsWritten(request)) - beforeEnd).toBe(3);
  });

  it("ends the window at the agent's acknowledgement instead: one call, 2 rows, no alarm run", async () => {
    const { key, issued, request, poll } = await approvedBoundRequest();
    expect((await poll()).status).toBe(200);
    const beforeAck = await rowsWritten(request);
    const acked = await call("POST", "/v1/credentials/ack", {
      json: { device_code: issued.device_code },
      headers: { DPoP: await proof(key, { htu: "https://keyferry.test/v1/credentials/ack" }) },
    });
    expect(acked.status).toBe(204);
    // The row update that erases the kept answer, the alarm moved back to the expiry.
    expect((await rowsWritten(request)) - beforeAck).toBe(2);
  });
});

describe("cost per handoff over the return channel: Durable Object calls", () => {
  /**
   * Counts every call into the two classes' instances (RPC methods, the socket upgrade's `fetch`,
   * alarms, hibernation wake-ups) by wrapping the prototypes the running instances use.
   */
  async function countCalls(stubs: Stub[]) {
    const calls: string[] = [];
    const restore: Array<() => void> = [];
    for (const stub of stubs) {
      const proto = await runInDurableObject(stub, (instance) => Object.getPrototypeOf(instance) as Record<string, unknown>);
      if (restore.some((r) => (r as { proto?: unknown }).proto === proto)) continue;
      const name = proto.constructor === Object ? "?" : (proto.constructor as { name: string }).name;
      const undo = () => {
        for (const [key, original] of originals) proto[key] = original;
      };
      const originals: Array<[string, unknown]> = [];
      for (const key of Object.getOwnPropertyNames(proto)) {
        const original = proto[key];
        if (key === "constructor" || typeof original !== "function") continue;
        originals.push([key, original]);
        proto[key] = function (this: unknown, ...args: unknown[]) {
          calls.push(`${name}.${key}`);
          return (original as (...a: unknown[]) => unknown).apply(this, args);
        };
      }
      restore.push(Object.assign(undo, { proto }));
    }
    return { calls, stop: () => restore.forEach((undo) => undo()) };
  }

  // 13 calls (6 RequestDO, 7 AccountDO) however long the operator takes. The request's six are the
  // five client requests of a handoff (issue, wait, look-up, decide, poll) and the close handshake;
  // the account's are issuance, its confirmation (which stores and sends the operator's notice
  // without an alarm), one audit write per outcome, and whether the account has a passkey (for the
  // page at look-up, for the rule at decide).
  it("is a fixed number of calls whatever the wait: no poll while the socket waits, even across an eviction", async () => {
    const { apiKey, accountId, operatorEmail } = await newAgent();
    // A request made only to reach the classes' prototypes through running instances.
    const probe = (await requestCredential(apiKey)).body;
    const counter = await countCalls([requestObject(probe.user_code), accountObject(accountId)]);
    try {
      const issued = (await requestCredential(apiKey)).body;
      const waiter = await openWait(deviceCodeProtocols(issued.device_code));
      expect(waiter.status).toBe(101);
      // However long the operator takes: the object may be evicted meanwhile, and nobody polls.
      await evictDurableObject(requestObject(issued.user_code));
      const { looked, decided } = await approve(issued.user_code, operatorEmail, "sk_cost");
      expect(looked.status).toBe(200);
      expect(decided.status).toBe(200);
      expect(await waiter.message).toEqual({ type: "decided", status: "approved" });
      expect((await poll(issued.device_code)).status).toBe(200);
      await auditUntilQuiet(counter.calls, accountObject(accountId));
    } finally {
      counter.stop();
    }
    const counted = counter.calls.filter((c) => !c.endsWith(".audit"));
    console.log(`Durable Object calls per handoff over the return channel: ${counted.length} (${counted.join(", ")})`);
    expect([...counted].sort()).toEqual(
      [
        "AccountDO.openRequest", // issuance: authenticate, take a slot, audit `requested`
        // The slot re-checked once the request object exists (a deleted agent's request ends), and the
        // operator's notice stored in the outbox and sent at once, in the background: no alarm.
        "AccountDO.confirmRequest",
        "RequestDO.create",
        "RequestDO.fetch", // the socket upgrade; the wait itself costs nothing
        "RequestDO.lookup",
        "AccountDO.decisionPasskeys", // the page signs with a passkey, or warns that there is none
        "AccountDO.recordRequestEvent", // looked_up
        "RequestDO.decide", // and the announcement on the socket
        "AccountDO.decisionPasskeys", // from the RequestDO: no passkey in this account, so the email binding decides
        "AccountDO.recordRequestEvent", // approved
        "RequestDO.webSocketClose", // the agent's reply to the server's close frame wakes the object once
        "RequestDO.poll", // the one poll, served at once
        "AccountDO.recordRequestEvent", // delivered: frees the slot
      ].sort(),
    );
  });
});

/**
 * Background work lands after the answers: wait for the three `recordRequestEvent`s and an empty outbox,
 * then check that nothing is left to wake the account: its notification went out without an alarm.
 */
async function auditUntilQuiet(calls: string[], account: Stub) {
  const count = (name: string) => calls.filter((c) => c === name).length;
  for (let i = 0; i < 250 && (count("AccountDO.recordRequestEvent") < 3 || (await outboxSize(account)) > 0); i++) {
    await sleep(20);
  }
  expect(await outboxSize(account)).toBe(0);
  expect(await runInDurableObject(account, (_instance, state) => state.storage.getAlarm())).toBeNull();
}
