// A slot is its request's `requested` audit row (durable-objects/account/live-slots.ts), and the log
// keeps only its newest AUDIT_LIMIT events: a flood of other events must neither free a live
// request's slot nor lose the console's summary on that row, nor the `approved` that keeps an
// approved request off the console's list.
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { AUDIT_LIMIT } from "../../durable-objects/account/audit-log";
import { approve, auditUntil, newAgent, poll, requestCredential } from "./support/api";
import { setPolicy } from "./support/approval-policy";

describe("the audit log's eviction and the slots on it", () => {
  it("keeps every event of a request holding its slot through more than AUDIT_LIMIT other events", { timeout: 120_000 }, async () => {
    const { accountId, apiKey, operatorEmail } = await newAgent();
    const stub = env.ACCOUNTS.get(env.ACCOUNTS.idFromName(accountId));
    // One request approved (it holds its slot until delivered, and the console no longer lists it)…
    const approved = (await requestCredential(apiKey, { vault_key: "approved" })).body;
    expect((await approve(approved.user_code, operatorEmail, "sk_kept")).decided.status).toBe(200);
    await auditUntil(accountId, (events) => events.some((e) => e.type === "approved"));
    // …and four that need two approvals, the first of them approved once (its summary says by whom).
    expect((await setPolicy(accountId, { approvals_required: 2 })).status).toBe(200);
    for (let i = 0; i < 4; i++) expect((await requestCredential(apiKey, { vault_key: `key-${i}` })).status).toBe(200);
    const before = await stub.consoleRequests();
    const firstPending = before.reason === "found" ? before.requests.find((r) => r.vaultKey === "key-0")! : null;
    const approvers = [{ operatorId: "opr_first", email: "first@example.com", passkeyId: "pk_1", at: Date.now() }];
    await stub.recordRequestEvent({ type: "partially_approved", requestId: firstPending!.requestId, progress: { payloadSha256: "digest-0", approvers } });
    const listedBefore = await stub.consoleRequests();
    expect(listedBefore.reason === "found" && listedBefore.requests.map((r) => r.vaultKey)).toEqual(["key-0", "key-1", "key-2", "key-3"]);

    // A flood of other events, each its own row (admin changes are not counted as noise).
    for (let i = 0; i < AUDIT_LIMIT + 100; i++) await stub.update({}, "flood");

    const events = await runInDurableObject(stub, (_i, state) =>
      state.storage.sql.exec<{ type: string }>("SELECT type FROM audit ORDER BY seq").toArray().map((row) => row.type),
    );
    // The eviction ran (the account's first events are gone) and kept the five requests' events.
    expect(events).not.toContain("agent_created");
    expect(events.filter((type) => type === "requested")).toHaveLength(5);
    expect(events).toContain("approved");
    expect(events.length).toBeLessThanOrEqual(AUDIT_LIMIT + 50 + 7);
    // The slots still count: the cap holds.
    expect((await requestCredential(apiKey)).status).toBe(429);
    // The console's list and summaries are unchanged: the approved request stays off it, key-0 keeps its approval.
    expect(await stub.consoleRequests()).toEqual(listedBefore);
    const listed = listedBefore.reason === "found" ? listedBefore.requests : [];
    expect(listed[0]!.approvals).toEqual({ required: 2, payloadSha256: "digest-0", approvers: [{ operatorId: "opr_first", email: "first@example.com" }] });
    // Once delivered, the approved request's slot frees: one more request fits.
    expect((await poll(approved.device_code)).status).toBe(200);
    await auditUntil(accountId, (events) => events.some((e) => e.type === "delivered"));
    expect((await requestCredential(apiKey)).status).toBe(200);
  });
});
