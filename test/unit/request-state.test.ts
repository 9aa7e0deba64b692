import { describe, expect, it } from "vitest";
import { decide, lookup, poll, revoke, takesOverClaim, wait, type PollAnswer, type PollInput, type RequestFacts, type RequestState, type WaitAnswer } from "../../core/request-state";

const NOW = 1_700_000_000_000;
const state = (over: Partial<RequestState> = {}): RequestState => ({
  status: "pending",
  expiresAt: NOW + 600_000,
  interval: 5,
  failedAttempts: 0,
  claimHash: null,
  replayReported: false,
  graceEndsAt: null,
  ...over,
});
const facts = (over: Partial<RequestFacts> = {}): RequestFacts => ({
  requestId: "req_1",
  agentId: "agt_1",
  apiKeyHash: "kh1",
  operatorEmail: "op@example.com",
  protocol: "device",
  dpopJkt: null,
  ...over,
});
const polled = (over: Partial<PollInput> = {}): PollInput => ({ tagMatches: true, client: null, dpop: null, lastPollAt: null, ...over });

describe("poll (RFC 8628 §3.4–3.5)", () => {
  it("never throttles the first poll, and delivers an approved request by leaving a delivered tombstone", () => {
    expect(poll(state(), facts(), polled(), NOW).answer).toEqual({ reason: "authorization_pending" });
    const delivered = poll(state({ status: "approved", claimHash: "s1" }), facts(), polled(), NOW);
    expect(delivered.answer).toEqual({ reason: "deliver" });
    expect(delivered.next).toMatchObject({ status: "delivered", claimHash: null });
  });

  it("answers slow_down with the interval raised by 5 s when polled sooner than the interval, and stores it", () => {
    const early = poll(state(), facts(), polled({ lastPollAt: NOW - 4_999 }), NOW);
    expect(early.answer).toEqual({ reason: "slow_down", interval: 10 });
    expect(early.next.interval).toBe(10);
    expect(poll(state({ interval: 10 }), facts(), polled({ lastPollAt: NOW - 9_000 }), NOW).answer).toEqual({ reason: "slow_down", interval: 15 });
    expect(poll(state(), facts(), polled({ lastPollAt: NOW - 5_000 }), NOW).answer).toEqual({ reason: "authorization_pending" });
  });

  it("serves a decided request at once, however soon after the previous poll (the return channel's promise)", () => {
    expect(poll(state({ status: "approved" }), facts(), polled({ lastPollAt: NOW - 1 }), NOW).answer).toEqual({ reason: "deliver" });
    expect(poll(state({ status: "denied" }), facts(), polled({ lastPollAt: NOW - 1 }), NOW).answer).toEqual({ reason: "access_denied" });
  });

  it("reports expiry, and a stale handle, without changing anything", () => {
    const s = state();
    expect(poll(s, facts(), polled(), NOW + 600_000)).toEqual({ next: s, answer: { reason: "expired_token" } });
    expect(poll(s, facts(), polled({ tagMatches: false }), NOW)).toEqual({ next: s, answer: { reason: "invalid_grant", replay: false } });
    expect(poll(s, facts(), polled({ tagMatches: false }), NOW + 600_000).answer).toEqual({ reason: "expired_token" });
  });

  it("refuses another agent (invalid_grant) and a wrong key (invalid_client) on the token endpoint", () => {
    expect(poll(state(), facts(), polled({ client: { agentId: "agt_2", keyHash: "kh1" } }), NOW).answer).toEqual({ reason: "invalid_grant", replay: false });
    expect(poll(state(), facts(), polled({ client: { agentId: "agt_1", keyHash: "kh2" } }), NOW).answer).toEqual({ reason: "invalid_client" });
  });

  it("reports a replayed delivered handle once", () => {
    const first = poll(state({ status: "delivered" }), facts(), polled(), NOW);
    expect(first.answer).toEqual({ reason: "invalid_grant", replay: true });
    expect(first.next.replayReported).toBe(true);
    expect(poll(first.next, facts(), polled(), NOW).answer).toEqual({ reason: "invalid_grant", replay: false });
    // Also when another client presents it on the token endpoint.
    const stranger = polled({ client: { agentId: "agt_2", keyHash: "kh2" } });
    expect(poll(state({ status: "delivered" }), facts(), stranger, NOW).answer).toEqual({ reason: "invalid_grant", replay: true });
  });

  it("requires a fresh proof by the bound key, and changes nothing when it is missing, another key's or replayed (RFC 9449)", () => {
    const bound = facts({ dpopJkt: "jkt1" });
    const approved = state({ status: "approved" });
    for (const dpop of [null, { jkt: "jkt2", jtiSeen: false }, { jkt: "jkt1", jtiSeen: true }]) {
      expect(poll(approved, bound, polled({ dpop }), NOW)).toEqual({ next: approved, answer: { reason: "invalid_dpop_proof" } });
    }
    expect(poll(approved, bound, polled({ dpop: { jkt: "jkt1", jtiSeen: false } }), NOW).answer).toEqual({ reason: "deliver" });
  });

  it("asks whether a proof by the bound key was seen (check_jti) only once every earlier check passed", () => {
    const bound = facts({ dpopJkt: "jkt1" });
    const asking = polled({ dpop: { jkt: "jkt1", jtiSeen: null } });
    expect(poll(state(), bound, asking, NOW).answer).toEqual({ reason: "check_jti" });
    expect(poll(state({ status: "delivered" }), bound, asking, NOW).answer).toEqual({ reason: "invalid_grant", replay: true });
    expect(poll(state(), bound, asking, NOW + 600_000).answer).toEqual({ reason: "expired_token" });
    expect(poll(state(), bound, polled({ dpop: { jkt: "jkt2", jtiSeen: null } }), NOW).answer).toEqual({ reason: "invalid_dpop_proof" });
    // An unbound request never asks.
    expect(poll(state(), facts(), asking, NOW).answer).toEqual({ reason: "authorization_pending" });
  });
});

describe("wait (the return channel) and poll agree", () => {
  /**
   * What a poll's answer means for a wait: where a poll would deliver or say pending, a wait listens;
   * where it would redeliver a kept answer (the grace window), a wait is refused as on any delivered
   * code, without the replay alarm: it is the bound key's own fresh proof.
   */
  const asWait = (answer: PollAnswer, status: RequestState["status"]): WaitAnswer => {
    switch (answer.reason) {
      case "redeliver":
        return { reason: "invalid_grant", replay: false };
      case "deliver":
      case "authorization_pending":
      case "slow_down":
        return { reason: "listen", approved: status === "approved" };
      default:
        return answer;
    }
  };
  const inGrace = state({ status: "delivered", graceEndsAt: NOW + 60_000 });
  const boundKey = facts({ dpopJkt: "jkt1" });
  const agent = { agentId: "agt_1", keyHash: "kh1" };
  const cases: Array<[string, RequestState, RequestFacts, Omit<PollInput, "lastPollAt">, WaitAnswer["reason"]]> = [
    ["pending", state(), facts(), polled(), "listen"],
    ["approved", state({ status: "approved", claimHash: "s1" }), facts(), polled(), "listen"],
    ["denied", state({ status: "denied" }), facts(), polled(), "access_denied"],
    ["expired", state({ expiresAt: NOW }), facts(), polled(), "expired_token"],
    ["delivered", state({ status: "delivered" }), facts(), polled(), "invalid_grant"],
    ["delivered, replay reported", state({ status: "delivered", replayReported: true }), facts(), polled(), "invalid_grant"],
    ["stale handle", state(), facts(), polled({ tagMatches: false }), "invalid_grant"],
    ["bound without proof", state({ status: "approved" }), facts({ dpopJkt: "jkt1" }), polled(), "invalid_dpop_proof"],
    ["bound, another key", state(), facts({ dpopJkt: "jkt1" }), polled({ dpop: { jkt: "jkt2", jtiSeen: false } }), "invalid_dpop_proof"],
    ["bound, jti seen", state({ status: "approved" }), facts({ dpopJkt: "jkt1" }), polled({ dpop: { jkt: "jkt1", jtiSeen: true } }), "invalid_dpop_proof"],
    ["bound, jti not asked yet", state(), facts({ dpopJkt: "jkt1" }), polled({ dpop: { jkt: "jkt1", jtiSeen: null } }), "check_jti"],
    ["bound, fresh proof", state({ status: "approved" }), facts({ dpopJkt: "jkt1" }), polled({ dpop: { jkt: "jkt1", jtiSeen: false } }), "listen"],
    ["wrong client", state({ status: "approved" }), facts(), polled({ client: { agentId: "agt_2", keyHash: "kh2" } }), "invalid_grant"],
    ["the agent's revoked key", state(), facts(), polled({ client: { ...agent, keyHash: "old" } }), "invalid_client"],
    ["the agent", state({ status: "approved" }), facts(), polled({ client: agent }), "listen"],
    ["denied, another client", state({ status: "denied" }), facts(), polled({ client: { agentId: "agt_2", keyHash: "kh2" } }), "invalid_grant"],
    ["delivered, bound, no proof", state({ status: "delivered" }), facts({ dpopJkt: "jkt1" }), polled(), "invalid_grant"],
    ["delivered, the agent's revoked key", state({ status: "delivered" }), facts(), polled({ client: { ...agent, keyHash: "old" } }), "invalid_grant"],
    ["expired, another client", state({ expiresAt: NOW }), facts(), polled({ client: { agentId: "agt_2", keyHash: "kh2" } }), "expired_token"],
    ["in grace, the bound key, jti not asked yet", inGrace, boundKey, polled({ dpop: { jkt: "jkt1", jtiSeen: null } }), "check_jti"],
    ["in grace, the bound key's fresh proof", inGrace, boundKey, polled({ dpop: { jkt: "jkt1", jtiSeen: false } }), "invalid_grant"],
    ["in grace, the bound key's fresh proof, the agent", inGrace, boundKey, polled({ client: agent, dpop: { jkt: "jkt1", jtiSeen: false } }), "invalid_grant"],
    ["in grace, the bound key's used proof", inGrace, boundKey, polled({ dpop: { jkt: "jkt1", jtiSeen: true } }), "invalid_grant"],
    ["in grace, another key", inGrace, boundKey, polled({ dpop: { jkt: "jkt2", jtiSeen: null } }), "invalid_grant"],
    ["in grace, no proof", inGrace, boundKey, polled(), "invalid_grant"],
    ["in grace, another client", inGrace, boundKey, polled({ client: { agentId: "agt_2", keyHash: "kh2" }, dpop: { jkt: "jkt1", jtiSeen: false } }), "invalid_grant"],
    ["after the window, the bound key's fresh proof", state({ status: "delivered", graceEndsAt: NOW }), boundKey, polled({ dpop: { jkt: "jkt1", jtiSeen: false } }), "invalid_grant"],
  ];

  it.each(cases)("%s", (_name, s, f, input, expected) => {
    const waited = wait(s, f, input, NOW);
    const polledOnce = poll(s, f, { ...input, lastPollAt: null }, NOW);
    expect(waited.answer.reason).toBe(expected);
    expect(waited.answer).toEqual(asWait(polledOnce.answer, s.status));
    // The same state follows, except what only a poll changes (delivery).
    expect(waited.next).toEqual(polledOnce.answer.reason === "deliver" ? s : polledOnce.next);
  });

  it("in the grace window: the poll redelivers, the wait is refused, neither raises the alarm for the bound key's fresh proof", () => {
    const fresh = polled({ dpop: { jkt: "jkt1", jtiSeen: false } });
    expect(poll(inGrace, boundKey, fresh, NOW)).toEqual({ next: inGrace, answer: { reason: "redeliver" } });
    expect(wait(inGrace, boundKey, fresh, NOW)).toEqual({ next: inGrace, answer: { reason: "invalid_grant", replay: false } });
    // A used proof, or any other caller, is the replay the alarm is for.
    const used = polled({ dpop: { jkt: "jkt1", jtiSeen: true } });
    expect(wait(inGrace, boundKey, used, NOW).answer).toEqual({ reason: "invalid_grant", replay: true });
    expect(poll(inGrace, boundKey, used, NOW).answer).toEqual({ reason: "invalid_grant", replay: true });
  });

  it("raises the replay alarm once on a delivered code, as a poll does", () => {
    const first = wait(state({ status: "delivered" }), facts(), polled(), NOW);
    expect(first.answer).toEqual({ reason: "invalid_grant", replay: true });
    expect(first.next.replayReported).toBe(true);
    expect(wait(first.next, facts(), polled(), NOW).answer).toEqual({ reason: "invalid_grant", replay: false });
  });
});

describe("lookup", () => {
  const input = { email: "op@example.com", linkRequestId: null, sessionHash: "s1", passkeyAccount: false };

  it("claims an unclaimed request for the session; the email is compared case-insensitively", () => {
    const result = lookup(state(), facts(), { ...input, email: " OP@example.com " }, NOW);
    expect(result.answer).toEqual({ reason: "ok" });
    expect(result.next.claimHash).toBe("s1");
  });

  it("lets the claiming session look again, and refuses any other without counting an attempt", () => {
    expect(lookup(state({ claimHash: "s1" }), facts(), input, NOW).answer.reason).toBe("ok");
    const other = lookup(state({ claimHash: "s1" }), facts(), { ...input, sessionHash: "s2" }, NOW);
    expect(other.answer).toEqual({ reason: "already_claimed" });
    expect(other.next.failedAttempts).toBe(0);
  });

  it("opens a request claimed elsewhere in an account with passkeys, leaving the claim, still checking the email", () => {
    const claimed = state({ claimHash: "s1" });
    const other = { ...input, sessionHash: "s2", passkeyAccount: true };
    expect(lookup(claimed, facts(), other, NOW)).toEqual({ next: claimed, answer: { reason: "ok" } });
    expect(lookup(claimed, facts(), { ...other, email: "x@example.com" }, NOW).answer).toEqual({ reason: "wrong_email", failedAttempts: 1, locked: false });
    expect(lookup(state({ claimHash: "s1", status: "approved" }), facts(), other, NOW).answer).toEqual({ reason: "not_found" });
  });

  it("counts a wrong email and locks the request as denied at the fifth", () => {
    expect(lookup(state(), facts(), { ...input, email: "x@example.com" }, NOW).answer).toEqual({ reason: "wrong_email", failedAttempts: 1, locked: false });
    const fifth = lookup(state({ failedAttempts: 4 }), facts(), { ...input, email: "x@example.com" }, NOW);
    expect(fifth.answer).toEqual({ reason: "wrong_email", failedAttempts: 5, locked: true });
    expect(fifth.next.status).toBe("denied");
    expect(lookup(fifth.next, facts(), input, NOW).answer).toEqual({ reason: "locked" });
  });

  it("opens a link only for its own request, and a pushed request only by link", () => {
    const link = { email: null, linkRequestId: "req_1", sessionHash: "s1", passkeyAccount: false };
    expect(lookup(state(), facts(), link, NOW).answer.reason).toBe("ok");
    expect(lookup(state(), facts(), { ...link, linkRequestId: "req_0" }, NOW).answer).toEqual({ reason: "not_found" });
    expect(lookup(state(), facts({ protocol: "ciba" }), input, NOW).answer).toEqual({ reason: "not_found" });
    expect(lookup(state(), facts({ protocol: "ciba" }), link, NOW).answer.reason).toBe("ok");
  });

  it("finds nothing for decided, delivered or expired requests", () => {
    expect(lookup(state({ status: "approved" }), facts(), input, NOW).answer).toEqual({ reason: "not_found" });
    expect(lookup(state({ status: "delivered" }), facts(), input, NOW).answer).toEqual({ reason: "not_found" });
    expect(lookup(state(), facts(), input, NOW + 600_000).answer).toEqual({ reason: "not_found" });
  });
});

describe("decide", () => {
  it("lets only the claiming session decide, once, before expiry, for the request its token names", () => {
    const claimed = state({ claimHash: "s1" });
    const approve = { sessionHash: "s1", decision: "approve" as const, requestId: "req_1", storedPayloadSha256: "d1", authority: { kind: "email_binding" as const } };
    expect(decide(claimed, facts(), approve, NOW)).toEqual({ next: { ...claimed, status: "approved" }, answer: { reason: "approved" } });
    expect(decide(claimed, facts(), { ...approve, decision: "deny" }, NOW).answer).toEqual({ reason: "denied" });
    expect(decide(claimed, facts(), { ...approve, sessionHash: "s2" }, NOW).answer).toEqual({ reason: "invalid_token" });
    expect(decide(state({ claimHash: "s1", status: "approved" }), facts(), approve, NOW).answer).toEqual({ reason: "invalid_token" });
    expect(decide(claimed, facts(), approve, NOW + 600_000).answer).toEqual({ reason: "invalid_token" });
    expect(decide(claimed, facts(), { ...approve, requestId: "req_other" }, NOW).answer).toEqual({ reason: "invalid_token" });
  });
});

describe("takesOverClaim", () => {
  const passkey = { kind: "passkey" as const, userVerified: true, committed: { requestId: "req_1", decision: "approve" as const, payloadSha256: null, expiresAt: NOW + 1 }, operator: { operatorId: "opr_1", email: "op@example.com", passkeyId: "pk1" } };

  it("is a passkey decision by a session other than the claiming one (the console has none)", () => {
    expect(takesOverClaim(state({ claimHash: "s1" }), { sessionHash: "s2", authority: passkey })).toBe(true);
    expect(takesOverClaim(state({ claimHash: "s1" }), { sessionHash: null, authority: passkey })).toBe(true);
    expect(takesOverClaim(state({ claimHash: "s1" }), { sessionHash: "s1", authority: passkey })).toBe(false);
    expect(takesOverClaim(state(), { sessionHash: null, authority: passkey })).toBe(false);
    expect(takesOverClaim(state({ claimHash: "s1" }), { sessionHash: "s2", authority: { kind: "email_binding" } })).toBe(false);
  });
});

describe("revoke", () => {
  it("ends a live request as denied, and is idempotent", () => {
    expect(revoke(state(), facts(), NOW)).toEqual({ next: state({ status: "denied" }), answer: { reason: "revoked", wasLive: true } });
    expect(revoke(state({ status: "approved" }), facts(), NOW).answer).toEqual({ reason: "revoked", wasLive: true });
    expect(revoke(state({ status: "denied" }), facts(), NOW).answer).toEqual({ reason: "revoked", wasLive: false });
    expect(revoke(state({ status: "denied" }), facts({ apiKeyHash: "revoked" }), NOW).answer).toEqual({ reason: "unchanged" });
    expect(revoke(state({ status: "delivered" }), facts(), NOW).answer).toEqual({ reason: "unchanged" });
    expect(revoke(state(), facts(), NOW + 600_000).answer).toEqual({ reason: "unchanged" });
  });
});
