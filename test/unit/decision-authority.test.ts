import { describe, expect, it } from "vitest";
import { decide, type RequestFacts, type RequestState } from "../../core/request-state";
import { establishAuthority, type AccountPasskeys, type DecisionChallenges } from "../../durable-objects/request/decision-authority";

const NOW = 1_700_000_000_000;
const state: RequestState = { status: "pending", expiresAt: NOW + 600_000, interval: 5, failedAttempts: 0, claimHash: "s1", replayReported: false, graceEndsAt: null };
const facts: RequestFacts = { requestId: "req_1", agentId: "agt_1", apiKeyHash: "h", operatorEmail: "o@example.com", protocol: "device", dpopJkt: null };
const party = { rpId: "keyferry.test", origin: "https://keyferry.test" };
const noChallenges = { take: () => null } as unknown as DecisionChallenges;
const account = (required: boolean): AccountPasskeys => ({ decisionPasskeys: async () => ({ required }), operatorPasskey: async () => null });

describe("the authority a decision without an assertion has", () => {
  it("is the email binding for an account without passkeys, unless REQUIRE_PASSKEY", async () => {
    const open = await establishAuthority(null, { account: account(false), challenges: noChallenges, party, requirePasskey: false });
    expect(open.authority).toEqual({ kind: "email_binding" });
    expect(decide(state, facts, { sessionHash: "s1", decision: "deny", storedPayloadSha256: null, authority: open.authority }, NOW).answer).toEqual({ reason: "denied" });

    const required = await establishAuthority(null, { account: account(false), challenges: noChallenges, party, requirePasskey: true });
    expect(required.authority).toEqual({ kind: "missing", enrolled: false });
    const refused = decide(state, facts, { sessionHash: "s1", decision: "deny", storedPayloadSha256: null, authority: required.authority }, NOW);
    expect(refused).toEqual({ next: state, answer: { reason: "passkey_required", enrolled: false } });
  });

  it("is missing for an account with a passkey, whatever the session", async () => {
    const { authority } = await establishAuthority(null, { account: account(true), challenges: noChallenges, party, requirePasskey: false });
    expect(decide(state, facts, { sessionHash: "s1", decision: "approve", storedPayloadSha256: "d1", authority }, NOW).answer).toEqual({ reason: "passkey_required", enrolled: true });
  });
});

describe("a passkey authority", () => {
  const committed = { requestId: "req_1", decision: "approve" as const, payloadSha256: "d1", expiresAt: NOW + 300_000 };
  const input = { sessionHash: null, decision: "approve" as const, payloadSha256: "d1", storedPayloadSha256: "d1" };
  it("decides only what its challenge committed to, with UV, before the challenge expires", () => {
    const passkey = { kind: "passkey" as const, userVerified: true, committed, operator: { operatorId: "opr_1", email: "o@example.com", passkeyId: "pk1" } };
    expect(decide(state, facts, { ...input, authority: passkey }, NOW).answer).toEqual({ reason: "approved" });
    expect(decide(state, facts, { ...input, authority: { ...passkey, committed: { ...committed, requestId: "req_2" } } }, NOW).answer).toEqual({ reason: "access_denied" });
    expect(decide(state, facts, { ...input, payloadSha256: "d2", authority: passkey }, NOW).answer).toEqual({ reason: "access_denied" });
    expect(decide(state, facts, { ...input, authority: { ...passkey, userVerified: false } }, NOW).answer).toEqual({ reason: "access_denied" });
    expect(decide(state, facts, { ...input, authority: passkey }, NOW + 300_000).answer).toEqual({ reason: "access_denied" });
    expect(decide(state, facts, { ...input, authority: { kind: "unverified" } }, NOW).answer).toEqual({ reason: "access_denied" });
  });
});
