import { describe, expect, it } from "vitest";
import { acknowledge, endGrace, poll, wakeAt, type PollInput, type RequestFacts, type RequestState } from "../../core/request-state";
import { deliveryGraceMs } from "../../core/limits";

/** README, "Nothing lost to a dropped response": the grace window of a DPoP-bound delivery, as pure rules. */
const NOW = 1_700_000_000_000;
const GRACE = 60_000;
const state = (over: Partial<RequestState> = {}): RequestState => ({
  status: "approved",
  expiresAt: NOW + 600_000,
  interval: 5,
  failedAttempts: 0,
  claimHash: "s1",
  replayReported: false,
  graceEndsAt: null,
  ...over,
});
const bound: RequestFacts = { requestId: "req_1", agentId: "agt_1", apiKeyHash: "kh1", operatorEmail: "op@example.com", protocol: "device", dpopJkt: "jkt1" };
const ownKey = { jkt: "jkt1", jtiSeen: false };
const polled = (over: Partial<PollInput> = {}): PollInput => ({ tagMatches: true, client: null, dpop: ownKey, lastPollAt: null, graceMs: GRACE, ...over });
const delivered = (at = NOW) => poll(state(), bound, polled(), at).next;

describe("delivery with a grace window", () => {
  it("keeps a bound delivery's answer for the window (never past expiry), and an unbound one's not at all", () => {
    expect(delivered()).toMatchObject({ status: "delivered", claimHash: null, graceEndsAt: NOW + GRACE });
    expect(poll(state({ expiresAt: NOW + 10_000 }), bound, polled(), NOW).next.graceEndsAt).toBe(NOW + 10_000);
    expect(poll(state(), { ...bound, dpopJkt: null }, polled({ dpop: null }), NOW).next.graceEndsAt).toBeNull();
    expect(poll(state(), bound, polled({ graceMs: 0 }), NOW).next.graceEndsAt).toBeNull();
    expect(poll(state(), bound, polled({ graceMs: undefined }), NOW).next.graceEndsAt).toBeNull();
  });

  it("redelivers to a fresh proof by the bound key within the window, changing nothing and raising no alarm", () => {
    const kept = delivered();
    expect(poll(kept, bound, polled(), NOW + 1)).toEqual({ next: kept, answer: { reason: "redeliver" } });
    expect(poll(kept, bound, polled({ client: { agentId: "agt_1", keyHash: "kh1" } }), NOW + GRACE - 1).answer).toEqual({ reason: "redeliver" });
  });

  it("refuses every other poll with the replay alarm, as after any delivery, and keeps the answer for the bound key", () => {
    const kept = delivered();
    const others: Array<Partial<PollInput>> = [
      { dpop: null },
      { dpop: { jkt: "jkt2", jtiSeen: false } },
      { dpop: { jkt: "jkt1", jtiSeen: true } },
      { client: { agentId: "agt_2", keyHash: "kh2" } },
      { client: { agentId: "agt_1", keyHash: "kh2" } },
    ];
    for (const other of others) {
      const refused = poll(kept, bound, polled(other), NOW + 1);
      expect(refused.answer).toEqual({ reason: "invalid_grant", replay: true });
      expect(refused.next).toEqual({ ...kept, replayReported: true });
      expect(poll(refused.next, bound, polled(), NOW + 2).answer).toEqual({ reason: "redeliver" });
    }
  });

  it("refuses the bound key too once the window is over", () => {
    const kept = delivered();
    expect(poll(kept, bound, polled(), NOW + GRACE).answer).toEqual({ reason: "invalid_grant", replay: true });
    expect(poll({ ...kept, graceEndsAt: null }, bound, polled(), NOW + 1).answer).toEqual({ reason: "invalid_grant", replay: true });
  });
});

describe("acknowledge", () => {
  const acked = (s: RequestState, over: Partial<PollInput> = {}, at = NOW + 1) => acknowledge(s, bound, { tagMatches: true, dpop: ownKey, ...over }, at);

  it("ends the window at once for a fresh proof by the bound key, and answers a repeat the same way without a change", () => {
    const kept = delivered();
    const first = acked(kept);
    expect(first).toEqual({ next: { ...kept, graceEndsAt: null }, answer: { reason: "acknowledged" } });
    expect(acked(first.next)).toEqual({ next: first.next, answer: { reason: "acknowledged" } });
  });

  it("refuses a stale handle, an expired request, an unbound one, another key or a reused proof, and anything not yet delivered", () => {
    const kept = delivered();
    expect(acked(kept, { tagMatches: false }).answer).toEqual({ reason: "invalid_grant" });
    expect(acked(kept, {}, NOW + 600_000).answer).toEqual({ reason: "expired_token" });
    expect(acknowledge(kept, { ...bound, dpopJkt: null }, { tagMatches: true, dpop: ownKey }, NOW).answer).toEqual({ reason: "not_bound" });
    for (const dpop of [null, { jkt: "jkt2", jtiSeen: false }, { jkt: "jkt1", jtiSeen: true }]) {
      expect(acked(kept, { dpop })).toEqual({ next: kept, answer: { reason: "invalid_dpop_proof" } });
    }
    expect(acked(state()).answer).toEqual({ reason: "not_delivered" });
  });
});

describe("the window's end", () => {
  it("erases the kept answer only once the window is over, and the alarm follows the earlier of window and expiry", () => {
    const kept = delivered();
    expect(wakeAt(kept)).toBe(NOW + GRACE);
    expect(endGrace(kept, NOW + GRACE - 1)).toEqual({ next: kept, answer: { reason: "unchanged" } });
    const ended = endGrace(kept, NOW + GRACE);
    expect(ended).toEqual({ next: { ...kept, graceEndsAt: null }, answer: { reason: "ended" } });
    expect(wakeAt(ended.next)).toBe(kept.expiresAt);
  });

  it("reads DELIVERY_GRACE_SECONDS: whole seconds, 0 for single delivery, 60 otherwise", () => {
    expect(deliveryGraceMs("60")).toBe(60_000);
    expect(deliveryGraceMs(" 5 ")).toBe(5_000);
    expect(deliveryGraceMs("0")).toBe(0);
    for (const bad of [undefined, "", "-1", "1.5", "soon"]) expect(deliveryGraceMs(bad)).toBe(60_000);
  });
});
