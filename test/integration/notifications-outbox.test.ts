// The account's outbox (durable-objects/account/notify/outbox.ts) inside workerd: stored and attempted at once (an issuance waits for
// the attempt, other events set the alarm to the lease's end first),
// retried with backoff and Retry-After, final on a 4xx, abandoned after an hour and audited, kept
// across an eviction, one event id throughout, nothing sent again once acknowledged. Time moves by
// an explicit clock (advanceAndRunAlarm), never by sleeping.
import { abortAllDurableObjects, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { BASE_DELAY_MS, LEASE_MS, RETRY_WINDOW_MS } from "../../durable-objects/account/notify/outbox";
import { FIRST_ATTEMPT_WAIT_MS } from "../../durable-objects/account/notify/notifier";
import { AUDIT_LIMIT } from "../../durable-objects/account/audit-log";
import { admin, auditUntil, call, newAgent, requestCredential, type Answer } from "./support/api";
import { captureEmail, captureOutbound, until } from "./support/outbound";
import { accountObject, advanceAndRunAlarm, eventually, outboxRows, type OutboxRow } from "./support/outbox";
import type { AccountUpdatedBody } from "../../core/wire";

afterEach(() => vi.restoreAllMocks());

const isWebhook = (row: { channel: string }) => row.channel === "webhook";
/** Records only this test's webhook: an earlier test's account may still be sending its own. */
const captureFor = (path: string, reply?: Parameters<typeof captureOutbound>[0]) => captureOutbound(reply, (url) => url.endsWith(`/${path}`));
/** How far the clock must move for the row to be due. */
const dueIn = (row: OutboxRow) => Math.max(0, row.next_at - Date.now()) + 1;

/** The alarm the operator's invitation armed when the account was made, run out: the request's own notices arm any the test sees. */
async function noAlarmArmed(accountId: string) {
  await eventually(async () => ((await outboxRows(accountId)).length === 0 ? true : undefined), "the invitation acknowledged");
  await runDurableObjectAlarm(accountObject(accountId));
  expect(await runInDurableObject(accountObject(accountId), (_i, state) => state.storage.getAlarm())).toBeNull();
}

/** An account with a webhook at https://hooks.example.com/<path>, and one request made. */
async function requestWithWebhook(path: string) {
  const emails = captureEmail();
  const agent = await newAgent();
  const patched = await call<Answer<AccountUpdatedBody>>("PATCH", `/v1/admin/accounts/${agent.accountId}`, { headers: admin, json: { webhook_url: `https://hooks.example.com/${path}` } });
  expect(patched.status).toBe(200);
  await noAlarmArmed(agent.accountId);
  const issued = await requestCredential(agent.apiKey);
  expect(issued.status).toBe(200);
  return { ...agent, issued, emails };
}

describe("the notification outbox", { timeout: 30_000 }, () => {
  it("stores an event before its first attempt, and deletes it once acknowledged", async () => {
    let release!: () => void;
    const held = new Promise<void>((done) => (release = done));
    const hooks = captureFor("held", async () => {
      await held;
      return new Response(null, { status: 204 });
    });
    const { accountId } = await requestWithWebhook("held");
    const first = await until(() => hooks[0], "the first attempt");
    // The attempt is in flight: the row is already stored, counted as attempted, with the same id.
    const during = (await outboxRows(accountId)).filter(isWebhook);
    expect(during).toHaveLength(1);
    expect(during[0]).toMatchObject({ id: first.headers.get("Keyferry-Event-Id"), type: "credential.requested", attempts: 1 });
    expect(JSON.parse(during[0]!.body).id).toBe(during[0]!.id);
    release();
    await eventually(async () => ((await outboxRows(accountId)).length === 0 ? true : undefined), "an empty outbox");
    // Nothing is due any more: running the alarm again sends nothing twice.
    await advanceAndRunAlarm(accountId, 2 * RETRY_WINDOW_MS);
    expect(hooks).toHaveLength(1);
  });

  it("answers an issuance once its notices' first attempt was accepted: nothing owed, no alarm armed", async () => {
    const hooks = captureFor("accepting", () => new Response(null, { status: 204 }));
    const emails = captureEmail();
    const agent = await newAgent();
    const patched = await call("PATCH", `/v1/admin/accounts/${agent.accountId}`, { headers: admin, json: { webhook_url: "https://hooks.example.com/accepting" } });
    expect(patched.status).toBe(200);
    await noAlarmArmed(agent.accountId);
    const alarm = () => runInDurableObject(accountObject(agent.accountId), (_i, state) => state.storage.getAlarm());
    expect((await requestCredential(agent.apiKey)).status).toBe(200);
    // Both were sent before the agent had its answer, and acknowledged in the same call.
    expect(hooks).toHaveLength(1);
    expect(emails).toHaveLength(1);
    expect(await outboxRows(agent.accountId)).toEqual([]);
    expect(await alarm()).toBeNull();
  });

  it("writes nothing after an issuance's notices its first attempt sent: never due, not after a crash nor by a later alarm, and evicted with the log", async () => {
    const hooks = captureFor("sent-once", () => new Response(null, { status: 204 }));
    const { accountId, emails } = await requestWithWebhook("sent-once");
    expect(hooks).toHaveLength(1);
    expect(emails).toHaveLength(1);
    const requestedRow = () =>
      runInDurableObject(accountObject(accountId), (_i, state) => state.storage.sql.exec<{ owed: string | null }>("SELECT owed FROM audit WHERE type = 'requested'").toArray()[0]);
    // Both still ride on the `requested` row, held by the issuance that sent them (durable-objects/account/notify/owed.ts).
    const held = JSON.parse((await requestedRow())!.owed!) as Array<{ channel: string; next_at: number | null }>;
    expect(held.map((entry) => [entry.channel, entry.next_at]).sort()).toEqual([["email", null], ["webhook", null]]);
    // A crash, then an alarm long after every lease: neither is sent again.
    await abortAllDurableObjects();
    await runInDurableObject(accountObject(accountId), (_i, state) => state.storage.setAlarm(Date.now()));
    expect(await advanceAndRunAlarm(accountId, 2 * RETRY_WINDOW_MS)).toBe(true);
    expect(hooks).toHaveLength(1);
    expect(emails).toHaveLength(1);
    // The row owes nothing: once its request is over (expired here), the log's eviction takes it like any other.
    const account = accountObject(accountId);
    await runInDurableObject(account, (_i, state) => state.storage.sql.exec("UPDATE audit SET expires_at = ? WHERE type = 'requested'", Date.now() - 1));
    for (let i = 0; i < AUDIT_LIMIT + 60; i++) {
      await account.addAgent({ agentId: `agt_filler_${i}`, name: `filler ${i}`, email: null, keyHash: "0".repeat(64), pingEndpoint: null });
    }
    expect(await requestedRow()).toBeUndefined();
  });

  it("arms the alarm for a refused first attempt's retry before the issuance answers", async () => {
    const hooks = captureFor("refused-first", (_r, n) => new Response(null, { status: n === 1 ? 503 : 204 }));
    const { accountId } = await requestWithWebhook("refused-first");
    // No waiting: the answer came after the attempt was settled and its retry armed.
    expect(hooks).toHaveLength(1);
    const [row] = (await outboxRows(accountId)).filter(isWebhook);
    expect(row).toMatchObject({ attempts: 1, last_status: 503 });
    const alarm = await runInDurableObject(accountObject(accountId), (_i, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm).toBeLessThanOrEqual(row!.next_at);
    await advanceAndRunAlarm(accountId, dueIn(row!));
    const second = await until(() => hooks[1], "the retry");
    expect(second.headers.get("Keyferry-Event-Id")).toBe(row!.id);
  });

  it("answers an issuance whose first attempt is still running after FIRST_ATTEMPT_WAIT_MS with the alarm at the lease's end; lost with its object, the attempt is retried then", async () => {
    // The receiver never answers the first attempt: the object is lost with the attempt in flight.
    const hooks = captureFor("lost", (_r, n) => (n === 1 ? new Promise<Response>(() => {}) : new Response(null, { status: 204 })));
    const started = Date.now();
    const { accountId } = await requestWithWebhook("lost");
    expect(Date.now() - started).toBeGreaterThanOrEqual(FIRST_ATTEMPT_WAIT_MS);
    const first = await until(() => hooks[0], "the first attempt");
    const row = (await outboxRows(accountId)).find(isWebhook)!;
    expect(row).toMatchObject({ id: first.headers.get("Keyferry-Event-Id"), attempts: 1 });
    // Leased before it was sent, and the alarm set to the lease's end: the only wake-up still owed.
    expect(row.next_at - row.created_at).toBeGreaterThanOrEqual(LEASE_MS);
    expect(row.next_at - row.created_at).toBeLessThan(LEASE_MS + 5_000);
    const alarm = await runInDurableObject(accountObject(accountId), (_i, state) => state.storage.getAlarm());
    expect(alarm).toBeLessThanOrEqual(row.next_at);
    // A crash, not a graceful eviction (which would wait for the attempt): every instance is reset, storage kept.
    await abortAllDurableObjects();
    expect(await advanceAndRunAlarm(accountId, dueIn(row))).toBe(true);
    const second = await until(() => hooks[1], "the retry after the lost attempt");
    expect(second.headers.get("Keyferry-Event-Id")).toBe(row.id);
    await eventually(async () => ((await outboxRows(accountId)).filter(isWebhook).length === 0 ? true : undefined), "the row acknowledged");
  });

  it("retries a 503 after an exponential, jittered delay, with the same id and body, then stops", async () => {
    const hooks = captureFor("flaky", (_r, n) => new Response("busy", { status: n === 1 ? 503 : 200 }));
    const { accountId } = await requestWithWebhook("flaky");
    const first = await until(() => hooks[0], "the first attempt");
    const row = await eventually(async () => (await outboxRows(accountId)).find((r) => isWebhook(r) && r.last_status === 503), "a rescheduled row");
    const attemptedAt = row.created_at;
    expect(row.attempts).toBe(1);
    // BASE · 2^0 scaled by [0.5, 1.5): between 2.5 and 7.5 s after the attempt.
    expect(row.next_at - attemptedAt).toBeGreaterThanOrEqual(BASE_DELAY_MS / 2);
    expect(row.next_at - attemptedAt).toBeLessThan(BASE_DELAY_MS * 1.5 + 5_000);
    // (Were the machine so slow that the real alarm came first, the retry is the same one.)
    await advanceAndRunAlarm(accountId, dueIn(row));
    const second = await until(() => hooks[1], "the retry");
    expect(second.body).toBe(first.body);
    expect(second.headers.get("Keyferry-Event-Id")).toBe(first.headers.get("Keyferry-Event-Id"));
    expect((await outboxRows(accountId)).filter(isWebhook)).toEqual([]);
    await advanceAndRunAlarm(accountId, 2 * RETRY_WINDOW_MS);
    expect(hooks).toHaveLength(2);
  });

  it("honours Retry-After on a 429, and retries a network error", async () => {
    const hooks = captureFor("limited", (_r, n) => {
      if (n === 1) return new Response(null, { status: 429, headers: { "Retry-After": "900" } });
      if (n === 2) throw new TypeError("Network connection lost.");
      return new Response(null, { status: 204 });
    });
    const { accountId } = await requestWithWebhook("limited");
    await until(() => hooks[0], "the first attempt");
    const limited = await eventually(async () => (await outboxRows(accountId)).find((r) => isWebhook(r) && r.last_status === 429), "a rescheduled row");
    // 900 s asked for, far beyond the backoff's first step.
    expect(limited.next_at - limited.created_at).toBeGreaterThanOrEqual(900_000);
    // Not due before the receiver's time: an alarm just before it sends nothing.
    await advanceAndRunAlarm(accountId, dueIn(limited) - 60_000);
    expect(hooks).toHaveLength(1);
    await advanceAndRunAlarm(accountId, 60_000);
    await until(() => hooks[1], "the attempt after Retry-After");
    const failedNetwork = await eventually(async () => (await outboxRows(accountId)).find((r) => isWebhook(r) && r.attempts === 2 && r.last_status === null), "a row rescheduled after a network error");
    expect(failedNetwork.last_status).toBeNull();
    await advanceAndRunAlarm(accountId, dueIn(failedNetwork));
    const third = await until(() => hooks[2], "the third attempt");
    expect(third.headers.get("Keyferry-Event-Id")).toBe(hooks[0]!.headers.get("Keyferry-Event-Id"));
    expect((await outboxRows(accountId)).filter(isWebhook)).toEqual([]);
  });

  it("treats a 400 as final: one attempt, audited as notification_failed", async () => {
    const hooks = captureFor("refusing", () => new Response("bad", { status: 400 }));
    const { accountId, issued } = await requestWithWebhook("refusing");
    const events = await auditUntil(accountId, (e) => e.some((x) => x.type === "notification_failed"));
    const failed = events.find((x) => x.type === "notification_failed")!;
    expect(failed.detail).toMatchObject({ channel: "webhook", event: "credential.requested", attempts: 1, status: 400, event_id: hooks[0]!.headers.get("Keyferry-Event-Id") });
    expect(failed.request_id).toBeDefined();
    expect((await outboxRows(accountId)).filter(isWebhook)).toEqual([]);
    await advanceAndRunAlarm(accountId, 2 * RETRY_WINDOW_MS);
    expect(hooks).toHaveLength(1);
    expect(issued.status).toBe(200);
  });

  it("keeps retrying for at least an hour, then abandons the event and audits the attempts", async () => {
    const hooks = captureFor("down", () => new Response(null, { status: 502 }));
    const { accountId } = await requestWithWebhook("down");
    await until(() => hooks[0], "the first attempt");
    let rows = await eventually(async () => {
      const found = (await outboxRows(accountId)).filter((r) => isWebhook(r) && r.last_status === 502);
      return found.length ? found : undefined;
    }, "a rescheduled row");
    const delays = [rows[0]!.next_at - Date.now()];
    let elapsed = 0;
    for (let step = 0; step < 40 && rows.length > 0; step++) {
      const shift = dueIn(rows[0]!);
      elapsed += shift;
      await advanceAndRunAlarm(accountId, shift);
      rows = (await outboxRows(accountId)).filter(isWebhook);
      if (rows[0]) delays.push(rows[0].next_at - Date.now());
    }
    expect(rows).toEqual([]);
    const ids = new Set(hooks.map((h) => h.headers.get("Keyferry-Event-Id")));
    expect(ids.size).toBe(1);
    // The delays grow (exponential, jittered) up to their cap, and the last attempt came an hour on.
    expect(Math.max(...delays)).toBeGreaterThan(4 * Math.min(...delays));
    const failed = (await auditUntil(accountId, (e) => e.some((x) => x.type === "notification_failed"))).find((x) => x.type === "notification_failed")!;
    expect(failed.detail).toMatchObject({ channel: "webhook", attempts: hooks.length, status: 502 });
    expect(elapsed).toBeGreaterThanOrEqual(RETRY_WINDOW_MS - 60_000);
    expect(hooks.length).toBeLessThan(20);
  });

  it("keeps an event's audit row while it still owes a notification: the log's eviction passes over it", async () => {
    const hooks = captureFor("outlived", (_r, n) => new Response(null, n === 1 ? { status: 503, headers: { "Retry-After": "3600" } } : { status: 204 }));
    const { accountId } = await requestWithWebhook("outlived");
    await until(() => hooks[0], "the first attempt");
    const row = await eventually(async () => (await outboxRows(accountId)).find((r) => isWebhook(r) && r.last_status === 503), "a rescheduled row");
    // More events than the log keeps, while the webhook event waits for its retry (agent_created notifies nobody).
    const account = accountObject(accountId);
    for (let i = 0; i < AUDIT_LIMIT + 60; i++) {
      await account.addAgent({ agentId: `agt_filler_${i}`, name: `filler ${i}`, email: null, keyHash: "0".repeat(64), pingEndpoint: null });
    }
    const log = await runInDurableObject(account, (_i, state) =>
      state.storage.sql.exec<{ type: string; owed: string | null }>("SELECT type, owed FROM audit ORDER BY seq").toArray(),
    );
    // Trimmed back to the newest AUDIT_LIMIT (and at most 50 more), all but the row that still owes.
    expect(log.length).toBeLessThanOrEqual(AUDIT_LIMIT + 51);
    expect(log.some((event) => event.type === "account_created")).toBe(false);
    expect(log[0]).toMatchObject({ type: "requested", owed: expect.stringContaining(row.id) });
    expect((await outboxRows(accountId)).find(isWebhook)).toMatchObject({ id: row.id, attempts: 1 });
    await advanceAndRunAlarm(accountId, dueIn(row));
    const second = await until(() => hooks[1], "the retry");
    expect(second.headers.get("Keyferry-Event-Id")).toBe(row.id);
    await eventually(async () => ((await outboxRows(accountId)).filter(isWebhook).length === 0 ? true : undefined), "the row acknowledged");
  });

  it("survives the object's eviction: the event is sent afterwards, with the same id", async () => {
    // A long Retry-After: the row waits in storage while the object is gone.
    const hooks = captureFor("evicted", (_r, n) => new Response(null, n === 1 ? { status: 503, headers: { "Retry-After": "3600" } } : { status: 204 }));
    const { accountId } = await requestWithWebhook("evicted");
    await until(() => hooks[0], "the first attempt");
    const row = await eventually(async () => (await outboxRows(accountId)).find((r) => isWebhook(r) && r.last_status === 503), "a rescheduled row");
    await evictDurableObject(accountObject(accountId));
    expect((await outboxRows(accountId)).find(isWebhook)).toMatchObject({ id: row.id, attempts: 1 });
    await advanceAndRunAlarm(accountId, dueIn(row));
    const second = await until(() => hooks[1], "the attempt after eviction");
    expect(second.headers.get("Keyferry-Event-Id")).toBe(row.id);
    expect((await outboxRows(accountId)).filter(isWebhook)).toEqual([]);
  });
});
