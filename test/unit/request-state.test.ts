import { describe, expect, it } from "vitest";
import { decideOutcome, lookupOutcome, pollOutcome, type RequestState } from "../../core/request-state";

const NOW = 1_700_000_000_000;
const state = (over: Partial<RequestState> = {}): RequestState => ({
  status: "pending",
  expiresAt: NOW + 600_000,
  interval: 5,
  failedAttempts: 0,
  claimHash: null,
  ...over,
});

describe("pollOutcome (RFC 8628 §3.4–3.5)", () => {
  it("never throttles the first poll", () => {
    expect(pollOutcome(state(), null, NOW)).toEqual({ reason: "authorization_pending" });
    expect(pollOutcome(state({ status: "approved" }), null, NOW)).toEqual({ reason: "deliver" });
  });

  it("answers slow_down with the interval raised by 5 s when polled sooner than the interval", () => {
    expect(pollOutcome(state(), NOW - 4_999, NOW)).toEqual({ reason: "slow_down", interval: 10 });
    expect(pollOutcome(state({ interval: 10 }), NOW - 9_000, NOW)).toEqual({ reason: "slow_down", interval: 15 });
  });

  it("accepts a poll exactly one interval after the previous one", () => {
    expect(pollOutcome(state(), NOW - 5_000, NOW)).toEqual({ reason: "authorization_pending" });
  });

  it("reports final states whatever the timing", () => {
    expect(pollOutcome(state({ status: "denied" }), NOW - 1, NOW)).toEqual({ reason: "access_denied" });
    expect(pollOutcome(state({ status: "delivered" }), null, NOW)).toEqual({ reason: "invalid_grant" });
    expect(pollOutcome(state(), null, NOW + 600_000)).toEqual({ reason: "expired_token" });
  });
});

describe("lookupOutcome", () => {
  const input = { sessionHash: "s1", emailMatches: true };

  it("claims an unclaimed request for the session", () => {
    expect(lookupOutcome(state(), input, NOW)).toEqual({ reason: "ok", claimHash: "s1" });
  });

  it("lets the claiming session look again, and refuses any other without counting an attempt", () => {
    expect(lookupOutcome(state({ claimHash: "s1" }), input, NOW).reason).toBe("ok");
    expect(lookupOutcome(state({ claimHash: "s1" }), { ...input, sessionHash: "s2" }, NOW)).toEqual({ reason: "already_claimed" });
  });

  it("counts a wrong email and locks at the fifth", () => {
    expect(lookupOutcome(state(), { ...input, emailMatches: false }, NOW)).toEqual({ reason: "wrong_email", failedAttempts: 1, locked: false });
    expect(lookupOutcome(state({ failedAttempts: 4 }), { ...input, emailMatches: false }, NOW)).toEqual({
      reason: "wrong_email",
      failedAttempts: 5,
      locked: true,
    });
    expect(lookupOutcome(state({ failedAttempts: 5, status: "denied" }), input, NOW)).toEqual({ reason: "locked" });
  });

  it("finds nothing for decided or expired requests", () => {
    expect(lookupOutcome(state({ status: "approved" }), input, NOW)).toEqual({ reason: "not_found" });
    expect(lookupOutcome(state(), input, NOW + 600_000)).toEqual({ reason: "not_found" });
  });
});

describe("decideOutcome", () => {
  it("lets only the claiming session decide, once, before expiry", () => {
    const claimed = state({ claimHash: "s1" });
    expect(decideOutcome(claimed, { sessionHash: "s1", decision: "approve" }, NOW)).toEqual({ reason: "approved" });
    expect(decideOutcome(claimed, { sessionHash: "s1", decision: "deny" }, NOW)).toEqual({ reason: "denied" });
    expect(decideOutcome(claimed, { sessionHash: "s2", decision: "approve" }, NOW)).toEqual({ reason: "invalid_token" });
    expect(decideOutcome(state({ claimHash: "s1", status: "approved" }), { sessionHash: "s1", decision: "deny" }, NOW)).toEqual({
      reason: "invalid_token",
    });
    expect(decideOutcome(claimed, { sessionHash: "s1", decision: "approve" }, NOW + 600_000)).toEqual({ reason: "invalid_token" });
  });
});
