import { env } from "cloudflare:workers";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { CostMeter, type Meters } from "../../bench/cost-meter";
import { admin, approve, bearer, call, newAgent, normalized, poll, requestCredential, type Answer } from "./support/api";
import { captureEmail, captureOutbound } from "./support/outbound";
import { dpopKey, proof } from "./support/dpop";
import type { DeviceAuthorizationBody } from "../../core/wire";
import { forgeHandle, requestAccepts } from "./support/forgery";
import { deviceCodeProtocols, openWait } from "./support/wait";
import { accountStub, requestStub } from "../../worker/stubs";
import { sleep } from "../support/sleep";
import { patchRequestRow, storedRow } from "./support/request-row";
import { OWES_SOMETHING } from "../../durable-objects/account/notify/owed";

/**
 * What a handoff costs in Durable Object work, and proof that a misbehaving poller cannot raise it:
 * slow_down (RFC 8628 §3.5) holds a client polling as fast as it can to one served poll per interval.
 * Storage work is read from SQLite's own counter (`total_changes()`: rows inserted, updated or
 * deleted on the object's connection, the key-value API's `_cf_KV` and the alarm's `_cf_METADATA`
 * included), so a change on the poll path that adds a write shows up here.
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
  await runInDurableObject(stub, (_instance, state) => patchRequestRow(state, { interval: 1 }));
  await evictDurableObject(stub);
  return stub;
}


describe("cost bound: the poll path", () => {
  it("holds a client polling as fast as it can to one served poll per interval", async () => {
    const { apiKey } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    const stub = await withOneSecondInterval(issued.user_code);
    const before = await rowsWritten(stub);

    // 8 concurrent pollers, each polling again the moment it has an answer, for 2.5 s.
    const answers: Array<{ at: number; error: string }> = [];
    const start = Date.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (Date.now() - start < 2500) {
          const answer = await poll(issued.device_code);
          expect(answer.status).toBe(400);
          answers.push({ at: Date.now() - start, error: answer.body.error! });
        }
      }),
    );
    const served = answers.filter((a) => a.error !== "slow_down");
    const slowDowns = answers.length - served.length;
    expect(answers.length).toBeGreaterThan(50);
    expect(served.map((a) => a.error)).toEqual(["authorization_pending"]);
    // Each slow_down raised the interval by 5 s for good: one row update each, and nothing else.
    const interval = await runInDurableObject(stub, (_i, state) => storedRow(state).interval);
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

afterEach(() => vi.restoreAllMocks());

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
    await runInDurableObject(request, (_i, state) => patchRequestRow(state, { grace_ends_at: 0 }));
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


/**
 * The meters of whole handoffs (bench/README.md, "Cost per handoff"), pinned: a change that adds a
 * row written or a Durable Object request anywhere in a handoff fails here. Counted inside workerd
 * by bench/cost-meter.ts over every object the handoff touches, from issuance to the request
 * object's expiry alarm, with the operator's email on (and a webhook added).
 */
describe("cost per handoff", () => {
  const meter = new CostMeter();

  /** Meters the classes and storage the running instances use (reached through a request made for it). */
  async function installMeter(apiKey: string, accountId: string) {
    const probe = (await requestCredential(apiKey)).body;
    for (const stub of [requestObject(probe.user_code), accountObject(accountId)]) {
      await runInDurableObject(stub, (instance, state) => {
        meter.meterClass(Object.getPrototypeOf(instance));
        meter.meterStorage(state.storage);
      });
    }
  }

  /**
   * Background work (audit events, the outbox) lands after the answers: wait until it stops and
   * nothing is owed (no audit row carries a notification that can come due; one its issuance sent,
   * `next_at` null, owes nothing: durable-objects/account/notify/owed.ts). The account's alarm may
   * stay armed: `fireAccountAlarm` runs it.
   */
  async function quiet(account: Stub) {
    let stable = 0;
    let seen = -1;
    for (let i = 0; i < 300 && stable < 5; i++) {
      await sleep(30);
      const owed = await runInDurableObject(account, (_i, state) => meter.uncounted(() => state.storage.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM audit WHERE ${OWES_SOMETHING}`).one().n));
      const calls = meter.read().calls.length;
      stable = owed === 0 && calls === seen ? stable + 1 : 0;
      seen = calls;
    }
  }

  /**
   * The account's alarm, left armed by the first attempts (they were acknowledged), fired now as
   * the runtime's scheduler fires it at the lease's end (moved to now, uncounted): it finds nothing
   * due and stops, so nothing stays armed.
   */
  async function fireAccountAlarm(account: Stub) {
    const runs = () => meter.read().calls.filter((call) => call === "AccountDO.alarm").length;
    const before = runs();
    const armed = await runInDurableObject(account, async (_i, state) => {
      if ((await state.storage.getAlarm()) === null) return false;
      await meter.uncounted(() => state.storage.setAlarm(Date.now()));
      return true;
    });
    for (let i = 0; armed && i < 200 && runs() === before; i++) await sleep(25);
    expect(await runInDurableObject(account, (_i, state) => state.storage.getAlarm())).toBeNull();
  }

  /**
   * The request object's expiry: its row's expiry and its alarm moved to now (uncounted), the
   * object evicted, then its alarm fires as the runtime's scheduler fires it. (runDurableObjectAlarm
   * would delete the alarm first, a row write production does not make.)
   */
  async function expire(userCode: string) {
    const stub = requestObject(userCode);
    await runInDurableObject(stub, (_i, state) =>
      meter.uncounted(() => {
        patchRequestRow(state, { expires_at: Date.now() - 1 });
        return state.storage.setAlarm(Date.now());
      }),
    );
    await evictDurableObject(stub);
    for (let i = 0; i < 200 && !meter.read().calls.includes("RequestDO.alarm"); i++) await sleep(25);
    expect(meter.read().calls).toContain("RequestDO.alarm");
  }

  /** One handoff over the return channel: issue, wait on the socket, look-up and approval, one poll, expiry. */
  async function returnChannelHandoff(options: { webhook: boolean }): Promise<Meters> {
    captureEmail();
    captureOutbound();
    const { apiKey, accountId, operatorEmail } = await newAgent();
    if (options.webhook) {
      const patched = await call("PATCH", `/v1/admin/accounts/${accountId}`, { headers: admin, json: { webhook_url: "https://hooks.example.com/cost" } });
      expect(patched.status).toBe(200);
    }
    await installMeter(apiKey, accountId);
    await quiet(accountObject(accountId));
    await fireAccountAlarm(accountObject(accountId));
    meter.reset();
    const issued = (await requestCredential(apiKey)).body;
    const waiter = await openWait(deviceCodeProtocols(issued.device_code));
    expect(waiter.status).toBe(101);
    // However long the operator takes: the object may be evicted meanwhile, and nobody polls.
    await evictDurableObject(requestObject(issued.user_code));
    const { looked, decided } = await approve(issued.user_code, operatorEmail, "sk_cost");
    expect(looked.status).toBe(200);
    expect(decided.status).toBe(200);
    expect(await waiter.message).toEqual({ type: "decided", status: "approved" });
    await waiter.closed;
    expect((await poll(issued.device_code)).status).toBe(200);
    await quiet(accountObject(accountId));
    await expire(issued.user_code);
    await quiet(accountObject(accountId));
    await fireAccountAlarm(accountObject(accountId));
    meter.pause();
    const meters = meter.read();
    console.log(`return-channel handoff${options.webhook ? " with a webhook" : ""}: ${JSON.stringify({ ...meters, calls: meters.calls.join(" ") })}\n${meter.writers().join("\n")}`);
    return meters;
  }

  it("over the return channel with the operator's email: PINNED rows and requests", async () => {
    const meters = await returnChannelHandoff({ webhook: false });
    expect([...meters.calls].sort()).toEqual([...RETURN_CHANNEL_CALLS].sort());
    expect({ rowsWritten: meters.rowsWritten, alarmWrites: meters.alarmWrites, doRequests: meters.doRequests }).toEqual(RETURN_CHANNEL_WITH_EMAIL);
    expect(meters.rowsRead).toBeLessThanOrEqual(ROWS_READ_AT_MOST);
  });

  it("with a webhook added: each webhook event PINNED", async () => {
    const meters = await returnChannelHandoff({ webhook: true });
    expect({ rowsWritten: meters.rowsWritten, alarmWrites: meters.alarmWrites, doRequests: meters.doRequests }).toEqual(RETURN_CHANNEL_WITH_WEBHOOK);
  });

  it("a served poll costs one request and no row written: a polling handoff is the same plus its polls", async () => {
    const { apiKey, accountId } = await newAgent();
    const issued = (await requestCredential(apiKey)).body;
    const stub = await withOneSecondInterval(issued.user_code);
    await installMeter(apiKey, accountId);
    await quiet(accountObject(accountId));
    expect((await poll(issued.device_code)).body.error).toBe("authorization_pending");
    meter.reset();
    for (let i = 0; i < 2; i++) {
      await sleep(1050);
      expect((await poll(issued.device_code)).body.error).toBe("authorization_pending");
    }
    meter.pause();
    const meters = meter.read();
    expect(meters.calls).toEqual(["RequestDO.poll", "RequestDO.poll"]);
    expect(meters.rowsWritten).toBe(0);
    expect(meters.rowsRead).toBe(0);
    expect(stub).toBeDefined();
  });
});

/** Every Durable Object request of a return-channel handoff, whatever the wait. */
const RETURN_CHANNEL_CALLS = [
  "AccountDO.issue",
  "RequestDO.create",
  "RequestDO.fetch",
  "RequestDO.lookup", // whether the page signs with a passkey: snapshotted at issuance, no call
  "RequestDO.decide",
  "AccountDO.recordEmailDecision", // no passkey in this account (checked in this call), so the email binding decides: recorded
  "RequestDO.webSocketClose",
  "RequestDO.poll",
  "AccountDO.recordRequestEvent",
  "RequestDO.alarm",
  // No AccountDO.alarm: the issuance waited for the email's first attempt, which was accepted, so
  // no alarm was ever armed (durable-objects/account/notify/notifier.ts, `sendFirst`).
];
/**
 * 8 rows written (34 before issue 21, by these meters, without the console). The request object,
 * 5: its row (one key-value entry, so no `CREATE TABLE`), its TTL alarm, the claim (with the
 * look-up), the decision with its payload, the tombstone; its `decision_challenges` table is made by
 * a first passkey challenge only. The account, 3: `requested`, which is also the slot, carries the
 * console's summary (durable-objects/account/live-slots.ts) and the email (held by the issuance in
 * the same row: durable-objects/account/notify/owed.ts), whose acceptance the issuance waits for and
 * writes nothing of (so no alarm is set, nor run); `approved` (with its look-up); `delivered`.
 * Nothing is written when the slot frees or the console's summary leaves the list: both are read
 * from the log. 10 requests.
 */
const RETURN_CHANNEL_WITH_EMAIL = { rowsWritten: 8, alarmWrites: 1, doRequests: 10 };
/**
 * +3 for the two webhook events after the issuance: each one's acknowledgement rewriting its audit
 * row's `owed`, and the alarm set by `credential.approved`'s lease (a decision's call does not wait
 * for the receiver), which then runs once (+1 request) and also covers `credential.delivered`'s
 * lease. `credential.requested` rides in its event's INSERT beside the email and is accepted before
 * the issuance answers, writing nothing more.
 */
const RETURN_CHANNEL_WITH_WEBHOOK = { rowsWritten: 11, alarmWrites: 2, doRequests: 11 };
/**
 * Rows read vary a little with the audit log's length; 57 measured (46 before the alarm read the log
 * for owed entries, 28 before the console's and passkeys' reads).
 */
const ROWS_READ_AT_MOST = 65;
