/**
 * Every decision signed by a passkey (README, "Operators and passkeys"): the refusals each leave the
 * request pending (the poll answers authorization_pending) and are each their own test.
 */
import { describe, expect, it } from "vitest";
import type { ErrorBody, OperatorInvitedBody } from "../../core/wire";
import { admin, auditUntil, call, poll, type Answer } from "./support/api";
import { enrol, invitationOf } from "./support/operators";
import { challengeFor, decideWith, passkeyAccount, pendingRequest, signDecision } from "./support/passkey-decisions";

const VALUE = "sk_live_passkey_signed";

/** 403 access_denied, and the request untouched. */
async function expectRefused(answer: { status: number; body: Partial<ErrorBody> }, deviceCode: string) {
  expect(answer.status).toBe(403);
  expect(answer.body.error).toBe("access_denied");
  await expectPending(deviceCode);
}

async function expectPending(deviceCode: string) {
  const answer = await poll(deviceCode);
  expect(answer.status).toBe(400);
  expect(answer.body.error).toBe("authorization_pending");
}

describe("a decision signed by a passkey", () => {
  it("approves with the owner's passkey; the agent receives it; the audit names the person", async () => {
    const account = await passkeyAccount();
    const pending = await pendingRequest(account.apiKey, account.email);
    expect(pending.looked.body.request.passkey_required).toBe(true);
    const challenge = await challengeFor(pending, "approve", VALUE);
    expect(challenge.status).toBe(200);
    expect(challenge.body.public_key).toMatchObject({ rpId: "keyferry.test", userVerification: "required", allowCredentials: [{ id: expect.any(String), type: "public-key" }] });
    const webauthn = await account.authenticator.assert(challenge.body.public_key);
    const decided = await decideWith(pending, "approve", VALUE, webauthn);
    expect(decided.status).toBe(200);
    expect(decided.body).toEqual({ status: "approved" });
    const delivered = await poll(pending.deviceCode);
    expect(delivered.body.credential_value).toBe(VALUE);
    const events = await auditUntil(account.accountId, (e) => e.some((event) => event.type === "approved"));
    expect(events.find((e) => e.type === "approved")!.actor).toEqual({
      operator_id: account.operatorId,
      email: account.email,
      passkey_id: webauthn.id,
      aaguid: "00000000-0000-0000-0000-000000000000",
      user_verified: true,
      ip: expect.any(String),
      user_agent: "",
    });
  });

  it("denies with a passkey too", async () => {
    const account = await passkeyAccount();
    const pending = await pendingRequest(account.apiKey, account.email);
    const webauthn = await signDecision(pending, account.authenticator, "deny");
    expect((await decideWith(pending, "deny", undefined, webauthn)).body).toEqual({ status: "denied" });
    expect((await poll(pending.deviceCode)).body.error).toBe("access_denied");
  });

  it("no assertion: 401 passkey_required, nothing changes and no attempt is counted", async () => {
    const account = await passkeyAccount();
    const pending = await pendingRequest(account.apiKey, account.email);
    for (let i = 0; i < 6; i++) {
      const answer = await decideWith(pending, "approve", VALUE, undefined);
      expect(answer.status).toBe(401);
      expect(answer.body.error).toBe("passkey_required");
    }
    expect((await decideWith(pending, "deny", undefined, undefined)).status).toBe(401);
    await expectPending(pending.deviceCode);
    // Still decidable: six refusals locked nothing.
    const webauthn = await signDecision(pending, account.authenticator, "approve", VALUE);
    expect((await decideWith(pending, "approve", VALUE, webauthn)).status).toBe(200);
  });

  it("a replayed assertion is refused: its challenge was consumed by the first try", async () => {
    const account = await passkeyAccount();
    const pending = await pendingRequest(account.apiKey, account.email);
    const webauthn = await signDecision(pending, account.authenticator, "approve", VALUE);
    expect((await decideWith(pending, "approve", "a different value", webauthn)).status).toBe(403);
    const replay = await decideWith(pending, "approve", VALUE, webauthn);
    await expectRefused(replay, pending.deviceCode);
  });

  it("an assertion made for another request is refused", async () => {
    const account = await passkeyAccount();
    const first = await pendingRequest(account.apiKey, account.email);
    const second = await pendingRequest(account.apiKey, account.email);
    const madeForFirst = await signDecision(first, account.authenticator, "approve", VALUE);
    const answer = await decideWith(second, "approve", VALUE, madeForFirst);
    await expectRefused(answer, second.deviceCode);
    await expectPending(first.deviceCode);
  });

  it("an approval's assertion cannot deny", async () => {
    const account = await passkeyAccount();
    const pending = await pendingRequest(account.apiKey, account.email);
    const approval = await signDecision(pending, account.authenticator, "approve", VALUE);
    const answer = await decideWith(pending, "deny", undefined, approval);
    await expectRefused(answer, pending.deviceCode);
  });

  it("a payload swapped after signing is refused", async () => {
    const account = await passkeyAccount();
    const pending = await pendingRequest(account.apiKey, account.email);
    const signed = await signDecision(pending, account.authenticator, "approve", VALUE);
    const answer = await decideWith(pending, "approve", "sk_live_attacker", signed);
    await expectRefused(answer, pending.deviceCode);
  });

  it("an assertion without user verification is refused", async () => {
    const account = await passkeyAccount();
    const pending = await pendingRequest(account.apiKey, account.email);
    const unverified = await signDecision(pending, account.authenticator, "approve", VALUE, { userVerified: false });
    const answer = await decideWith(pending, "approve", VALUE, unverified);
    await expectRefused(answer, pending.deviceCode);
  });

  it("another account's passkey is refused", async () => {
    const account = await passkeyAccount();
    const other = await passkeyAccount();
    const pending = await pendingRequest(account.apiKey, account.email);
    const challenge = await challengeFor(pending, "approve", VALUE);
    const foreign = await other.authenticator.assert(challenge.body.public_key, {}, other.authenticator.credentials[0]);
    const answer = await decideWith(pending, "approve", VALUE, foreign);
    await expectRefused(answer, pending.deviceCode);
  });

  it("a removed operator's passkey is refused at once", async () => {
    const account = await passkeyAccount();
    const invited = await call<Answer<OperatorInvitedBody>>("POST", `/v1/admin/accounts/${account.accountId}/operators`, { headers: admin, json: { email: `approver-${crypto.randomUUID()}@example.com` } });
    const approver = await enrol(invitationOf(invited.body.invitation_url));
    const pending = await pendingRequest(account.apiKey, account.email);
    const signed = await signDecision(pending, approver.authenticator, "approve", VALUE);
    expect((await call("DELETE", `/v1/admin/accounts/${account.accountId}/operators/${invited.body.operator_id}`, { headers: admin })).status).toBe(204);
    const answer = await decideWith(pending, "approve", VALUE, signed);
    await expectRefused(answer, pending.deviceCode);
  });

  it("an authenticator whose counter went backwards is refused (a cloned key)", async () => {
    const account = await passkeyAccount();
    const first = await pendingRequest(account.apiKey, account.email);
    const ahead = await signDecision(first, account.authenticator, "deny", undefined, { counter: 50 });
    expect((await decideWith(first, "deny", undefined, ahead)).status).toBe(200);
    const pending = await pendingRequest(account.apiKey, account.email);
    // Wait for the first decision's counter to be recorded in the background.
    await auditUntil(account.accountId, (e) => e.some((event) => event.type === "denied"));
    const behind = await signDecision(pending, account.authenticator, "approve", VALUE, { counter: 20 });
    expect((await decideWith(pending, "approve", VALUE, behind)).status).toBe(403);
    await expectPending(pending.deviceCode);
  });
});

describe("accounts without a passkey", () => {
  it("a request issued before the first enrolment: the page was told none, but the decision needs the passkey now", async () => {
    const account = await passkeyAccount({ enrolled: false });
    const pending = await pendingRequest(account.apiKey, account.email);
    expect(pending.looked.body.request.passkey_required).toBe(false);
    const { authenticator } = await enrol(account.invitation);
    // The look-up's answer was taken at issuance (no call to the account); the decision asks it.
    const unsigned = await decideWith(pending, "approve", VALUE, undefined);
    expect([unsigned.status, unsigned.body.error]).toEqual([401, "passkey_required"]);
    await expectPending(pending.deviceCode);
    const webauthn = await signDecision(pending, authenticator, "approve", VALUE);
    expect((await decideWith(pending, "approve", VALUE, webauthn)).body).toEqual({ status: "approved" });
  });

  it("keep the email binding; the look-up says so; the audit's passkey fields are null", async () => {
    const account = await passkeyAccount({ enrolled: false });
    const pending = await pendingRequest(account.apiKey, account.email);
    expect(pending.looked.body.request.passkey_required).toBe(false);
    const challenge = await challengeFor(pending, "approve", VALUE);
    expect(challenge.status).toBe(400);
    const decided = await decideWith(pending, "approve", VALUE, undefined);
    expect(decided.body).toEqual({ status: "approved" });
    const events = await auditUntil(account.accountId, (e) => e.some((event) => event.type === "approved"));
    expect(events.find((e) => e.type === "approved")!.actor).toEqual({
      operator_id: null,
      email: account.email,
      passkey_id: null,
      aaguid: null,
      user_verified: null,
      ip: expect.any(String),
      user_agent: "",
    });
  });

  it("an assertion by a passkey the account does not hold is refused there too", async () => {
    const account = await passkeyAccount({ enrolled: false });
    const other = await passkeyAccount();
    const pending = await pendingRequest(account.apiKey, account.email);
    const options = { rpId: "keyferry.test", challenge: "AAAA", allowCredentials: [] };
    const answer = await decideWith(pending, "approve", VALUE, await other.authenticator.assert(options));
    expect(answer.status).toBe(403);
    await expectPending(pending.deviceCode);
  });
});

describe("challenge and decide bad input", () => {
  it("answers the error shape, never a 500", async () => {
    const account = await passkeyAccount();
    const pending = await pendingRequest(account.apiKey, account.email);
    const good = await signDecision(pending, account.authenticator, "approve", VALUE);
    const cases: Array<[string, Record<string, unknown>, number]> = [
      ["/v1/approvals/challenge", { approval_token: pending.approvalToken, decision: "approve" }, 400],
      ["/v1/approvals/challenge", { approval_token: pending.approvalToken, decision: "approve", payload_sha256: "short" }, 400],
      ["/v1/approvals/challenge", { approval_token: pending.approvalToken, decision: "deny", payload_sha256: "A".repeat(43) }, 400],
      ["/v1/approvals/challenge", { approval_token: pending.approvalToken, decision: 1 }, 400],
      ["/v1/approvals/challenge", { approval_token: "forged", decision: "deny" }, 403],
      ["/v1/approvals/decide", { approval_token: pending.approvalToken, decision: "approve", credential_value: VALUE, webauthn: "x" }, 400],
      ["/v1/approvals/decide", { approval_token: pending.approvalToken, decision: "approve", credential_value: VALUE, webauthn: { ...good, response: { ...good.response, signature: "!!" } } }, 400],
      ["/v1/approvals/decide", { approval_token: pending.approvalToken, decision: "approve", credential_value: VALUE, webauthn: { ...good, id: "unknownCredentialId", rawId: "unknownCredentialId" } }, 403],
      ["/v1/approvals/decide", { approval_token: pending.approvalToken, decision: "approve", credential_value: VALUE, webauthn: { ...good, response: { ...good.response, clientDataJSON: "bm90IGpzb24" } } }, 403],
    ];
    for (const [path, json, status] of cases) {
      const answer = await call("POST", path, { headers: { Cookie: pending.cookie }, json });
      expect([path, json, answer.status]).toEqual([path, json, status]);
      expect(Object.keys(answer.body as object).sort()).toEqual(["error", "error_description"]);
    }
    const malformed = await call("POST", "/v1/approvals/challenge", { headers: { Cookie: pending.cookie, "Content-Type": "application/json" }, body: "{" });
    expect(malformed.status).toBe(400);
    await expectPending(pending.deviceCode);
  });
});
