import { describe, expect, it } from "vitest";
import { approvalsRequiredFor, globMatches, type ApprovalProgress } from "../../core/approval-policy";
import { decide, type DecideInput, type DecisionAuthority, type RequestFacts, type RequestState } from "../../core/request-state";

const NOW = 1_700_000_000_000;
const state: RequestState = { status: "pending", expiresAt: NOW + 600_000, interval: 5, failedAttempts: 0, claimHash: null, replayReported: false, graceEndsAt: null };
const facts: RequestFacts = { requestId: "req_1", agentId: "agt_1", apiKeyHash: "h", operatorEmail: "a@example.com", protocol: "device", dpopJkt: null };

describe("globMatches", () => {
  it("matches `*` to any run of characters, every other character to itself", () => {
    const cases: Array<[string, string, boolean]> = [
      ["stripe-sk", "stripe-sk", true],
      ["stripe-sk", "stripe-sk2", false],
      ["stripe-*", "stripe-sk", true],
      ["stripe-*", "stripe-", true],
      ["stripe-*", "stripe", false],
      ["*", "anything.at_all", true],
      ["prod.*.db", "prod.eu.db", true],
      ["prod.*.db", "prod.eu.db.bak", false],
      ["*-sk", "live-sk", true],
      ["*-sk", "live-pk", false],
      ["a*b*c", "aXbYbZc", true],
      ["a*b*c", "aXbYbZ", false],
      ["**", "", true],
      ["Stripe-*", "stripe-sk", false],
      // A dot is itself, not "any character".
      ["prod.db", "prodXdb", false],
    ];
    for (const [glob, key, expected] of cases) expect([glob, key, globMatches(glob, key)]).toEqual([glob, key, expected]);
  });

  it("stays fast on a glob built to backtrack", () => {
    const started = performance.now();
    expect(globMatches(`${"*a".repeat(40)}*b`, "a".repeat(128))).toBe(false);
    expect(performance.now() - started).toBeLessThan(50);
  });
});

describe("approvalsRequiredFor", () => {
  it("covers every request without globs, only matching vault keys with them, and is 1 otherwise", () => {
    expect(approvalsRequiredFor({ approvalsRequired: 1, vaultKeys: null }, "x")).toBe(1);
    expect(approvalsRequiredFor({ approvalsRequired: 3, vaultKeys: null }, "x")).toBe(3);
    expect(approvalsRequiredFor({ approvalsRequired: 2, vaultKeys: ["prod-*", "stripe-sk"] }, "prod-db")).toBe(2);
    expect(approvalsRequiredFor({ approvalsRequired: 2, vaultKeys: ["prod-*", "stripe-sk"] }, "stripe-sk")).toBe(2);
    expect(approvalsRequiredFor({ approvalsRequired: 2, vaultKeys: ["prod-*", "stripe-sk"] }, "staging-db")).toBe(1);
    expect(approvalsRequiredFor({ approvalsRequired: 2, vaultKeys: [] }, "prod-db")).toBe(1);
  });
});

describe("decide under an approval policy of 2", () => {
  const operator = (n: number) => ({ operatorId: `opr_${n}`, email: `op${n}@example.com`, passkeyId: `pk${n}` });
  const signed = (n: number, payloadSha256: string | null, decision: "approve" | "deny" = "approve"): DecisionAuthority => ({
    kind: "passkey",
    userVerified: true,
    committed: { requestId: "req_1", decision, payloadSha256, expiresAt: NOW + 300_000 },
    operator: operator(n),
  });
  const input = (over: Partial<DecideInput> & Pick<DecideInput, "authority">): DecideInput => ({
    sessionHash: null,
    decision: "approve",
    payloadSha256: null,
    storedPayloadSha256: null,
    approvals: { required: 2, progress: null },
    ...over,
  });
  const afterFirst: ApprovalProgress = { payloadSha256: "d1", approvers: [{ ...operator(1), at: NOW - 1000 }] };

  it("keeps the request pending after the first approval and says how many there are", () => {
    // A plain value: its passkey signs the value's digest; later approvers sign the stored JWE's ("j1").
    const first = decide(state, facts, input({ payloadSha256: "d1", storedPayloadSha256: "j1", authority: signed(1, "d1") }), NOW);
    expect(first.next).toBe(state);
    expect(first.answer).toEqual({ reason: "awaiting_approvals", approvals: 1, required: 2, progress: { payloadSha256: "j1", approvers: [{ ...operator(1), at: NOW }] } });
  });

  it("approves at the second distinct operator, who signs the stored digest and sends no credential; lists both", () => {
    const second = decide(state, facts, input({ approvals: { required: 2, progress: afterFirst }, authority: signed(2, "d1") }), NOW);
    expect(second.next.status).toBe("approved");
    expect(second.answer).toEqual({ reason: "approved", approvers: [...afterFirst.approvers, { ...operator(2), at: NOW }] });
  });

  it("counts one operator once: 409 already_approved, nothing changes", () => {
    const again = decide(state, facts, input({ approvals: { required: 2, progress: afterFirst }, authority: signed(1, "d1") }), NOW);
    expect(again).toEqual({ next: state, answer: { reason: "already_approved" } });
  });

  it("refuses a later approval whose passkey signed another digest than the stored one", () => {
    const other = decide(state, facts, input({ approvals: { required: 2, progress: afterFirst }, authority: signed(2, "d2") }), NOW);
    expect(other).toEqual({ next: state, answer: { reason: "access_denied" } });
    // Nor may it send a credential, whatever its challenge committed to: the stored one is what is delivered.
    const swapped = decide(state, facts, input({ payloadSha256: "d2", storedPayloadSha256: "d2", approvals: { required: 2, progress: afterFirst }, authority: signed(2, "d2") }), NOW);
    expect(swapped).toEqual({ next: state, answer: { reason: "credential_not_expected" } });
    const resent = decide(state, facts, input({ payloadSha256: "d1", storedPayloadSha256: "d1", approvals: { required: 2, progress: afterFirst }, authority: signed(2, "d1") }), NOW);
    expect(resent).toEqual({ next: state, answer: { reason: "credential_not_expected" } });
  });

  it("needs a credential from the first approver", () => {
    expect(decide(state, facts, input({ authority: signed(1, null) }), NOW).answer).toEqual({ reason: "credential_required" });
  });

  it("ends the request at any denial, before or after an approval", () => {
    for (const progress of [null, afterFirst]) {
      const denied = decide(state, facts, input({ decision: "deny", approvals: { required: 2, progress }, authority: signed(2, null, "deny") }), NOW);
      expect(denied).toEqual({ next: { ...state, status: "denied" }, answer: { reason: "denied" } });
    }
  });

  it("cannot be approved under the email binding, but can be denied", () => {
    const claimed = { ...state, claimHash: "s1" };
    const binding = { kind: "email_binding" as const };
    expect(decide(claimed, facts, input({ sessionHash: "s1", payloadSha256: "d1", storedPayloadSha256: "d1", authority: binding }), NOW)).toEqual({
      next: claimed,
      answer: { reason: "policy_needs_passkeys", required: 2 },
    });
    expect(decide(claimed, facts, input({ sessionHash: "s1", decision: "deny", authority: binding }), NOW).answer).toEqual({ reason: "denied" });
  });

  it("needs three distinct operators under a policy of 3", () => {
    const progress: ApprovalProgress = { payloadSha256: "d1", approvers: [{ ...operator(1), at: NOW - 2 }] };
    const second = decide(state, facts, input({ approvals: { required: 3, progress }, authority: signed(2, "d1") }), NOW);
    expect(second.answer).toMatchObject({ reason: "awaiting_approvals", approvals: 2, required: 3 });
    if (second.answer.reason !== "awaiting_approvals") throw new Error("unreachable");
    const third = decide(state, facts, input({ approvals: { required: 3, progress: second.answer.progress }, authority: signed(3, "d1") }), NOW);
    expect(third.answer).toMatchObject({ reason: "approved", approvers: [{ operatorId: "opr_1" }, { operatorId: "opr_2" }, { operatorId: "opr_3" }] });
  });
});
