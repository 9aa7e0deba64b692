/**
 * Claims a crash cannot strand (README, "Contract notes"): in an account with passkeys, a browser
 * other than the one that claimed a request may open it and decide it with a passkey, audited as
 * `claim_taken_over`; an email-bound account keeps RFC 8628 §5.5's strict claim.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ConsoleRequestsBody, DecideAnswerBody, LookupAnswerBody, PasskeyChallengeAnswerBody } from "../../core/wire";
import { auditUntil, call, lookupAs, newAgent, poll, requestCredential, type Answer } from "./support/api";
import { consoleHeaders, signIn } from "./support/operators";
import { captureEmail, decodeBody, until } from "./support/outbound";
import { decideWith, passkeyAccount, pendingRequest, signDecision } from "./support/passkey-decisions";

const VALUE = "sk_live_taken_over";
const LINK = /https:\/\/keyferry\.test\/approve#link=([\w.-]+)/;

const lookupByLink = (link: string) => call<Answer<LookupAnswerBody>>("POST", "/v1/approvals/lookup", { json: { link_token: link } });

afterEach(() => {
  vi.restoreAllMocks();
});

describe("a request claimed by a browser that vanished", () => {
  it("with passkeys: another browser opens it (200), decides it with a passkey, and the agent receives it", async () => {
    const account = await passkeyAccount();
    // Browser A looks the request up (claiming it), then crashes: its cookie is gone.
    const a = await pendingRequest(account.apiKey, account.email);
    expect(a.looked.status).toBe(200);
    const b = await lookupAs(a.looked.body.request.user_code!, account.email);
    expect([b.status, b.body.error]).toEqual([200, undefined]);
    expect(b.cookie).toBeDefined();
    expect(b.cookie).not.toBe(a.cookie);
    expect(b.body.request.passkey_required).toBe(true);
    const pendingB = { approvalToken: b.body.approval_token, cookie: b.cookie! };
    // Without a passkey, B cannot decide: the claim is not B's.
    expect((await decideWith(pendingB, "approve", VALUE, undefined)).status).toBe(401);
    const webauthn = await signDecision(pendingB, account.authenticator, "approve", VALUE);
    const decided = await decideWith(pendingB, "approve", VALUE, webauthn);
    expect([decided.status, decided.body]).toEqual([200, { status: "approved" }]);
    expect((await poll(a.deviceCode)).body.credential_value).toBe(VALUE);

    // The log is newest first.
    const events = (await auditUntil(account.accountId, (e) => e.some((event) => event.type === "approved"))).reverse();
    const types = events.map((e) => e.type);
    expect(types.filter((t) => t === "claim_taken_over")).toHaveLength(1);
    expect(types.indexOf("claim_taken_over")).toBeLessThan(types.indexOf("approved"));
    const takenOver = events.find((e) => e.type === "claim_taken_over")!;
    expect(takenOver.actor).toMatchObject({ operator_id: account.operatorId, email: account.email, passkey_id: webauthn.id, user_verified: true });
    expect(takenOver.request_id).toBe(events.find((e) => e.type === "approved")!.request_id);
  });

  it("with passkeys: the signed link opens a claimed request in another browser too", async () => {
    const emails = captureEmail();
    const account = await passkeyAccount();
    const vaultKey = `link-${crypto.randomUUID().slice(0, 8)}`;
    await requestCredential(account.apiKey, { vault_key: vaultKey });
    const email = await until(() => emails.find((e) => decodeBody(e.raw).includes(vaultKey)), "an email");
    const link = decodeBody(email.raw).match(LINK)![1]!;
    const a = await lookupByLink(link);
    const b = await lookupByLink(link);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(b.headers.get("Set-Cookie")).toMatch(/^__Host-kf_approval=/);
  });

  it("with passkeys: the claiming browser's own passkey decision takes nothing over", async () => {
    const account = await passkeyAccount();
    const a = await pendingRequest(account.apiKey, account.email);
    const webauthn = await signDecision(a, account.authenticator, "deny");
    expect((await decideWith(a, "deny", undefined, webauthn)).body).toEqual({ status: "denied" });
    const events = await auditUntil(account.accountId, (e) => e.some((event) => event.type === "denied"));
    expect(events.map((e) => e.type)).not.toContain("claim_taken_over");
  });

  it("email-bound: another browser is still refused (409) and the first one still decides", async () => {
    const agent = await newAgent(`op-${crypto.randomUUID()}@example.com`);
    const issued = await requestCredential(agent.apiKey);
    const a = await lookupAs(issued.body.user_code, agent.operatorEmail);
    expect(a.status).toBe(200);
    const b = await lookupAs(issued.body.user_code, agent.operatorEmail);
    expect([b.status, b.body.error]).toEqual([409, "already_claimed"]);
    expect((await poll(issued.body.device_code)).body.error).toBe("authorization_pending");
    const decided = await decideWith({ approvalToken: a.body.approval_token, cookie: a.cookie! }, "approve", VALUE, undefined);
    expect([decided.status, decided.body]).toEqual([200, { status: "approved" }]);
    const events = await auditUntil(agent.accountId, (e) => e.some((event) => event.type === "approved"));
    expect(events.map((e) => e.type)).not.toContain("claim_taken_over");
  });

  it("a console decision of a request claimed on the approval page is audited as a takeover", async () => {
    const account = await passkeyAccount();
    const issued = await requestCredential(account.apiKey, { description: `console-${crypto.randomUUID()}` });
    expect((await lookupAs(issued.body.user_code, account.email)).status).toBe(200);
    const { cookie } = await signIn(account.authenticator);
    const listed = await call<Answer<ConsoleRequestsBody>>("GET", "/v1/console/requests", { headers: consoleHeaders(cookie) });
    const requestId = listed.body.requests[0]!.request_id;
    const base = `/v1/console/requests/${requestId}`;
    const challenge = await call<Answer<PasskeyChallengeAnswerBody>>("POST", `${base}/challenge`, { headers: consoleHeaders(cookie), json: { decision: "deny" } });
    expect(challenge.status, JSON.stringify(challenge.body)).toBe(200);
    const webauthn = await account.authenticator.assert(challenge.body.public_key);
    const decided = await call<Answer<DecideAnswerBody>>("POST", `${base}/decide`, { headers: consoleHeaders(cookie), json: { decision: "deny", webauthn } });
    expect([decided.status, decided.body]).toEqual([200, { status: "denied" }]);
    const types = (await auditUntil(account.accountId, (e) => e.some((event) => event.type === "denied"))).reverse().map((e) => e.type);
    expect(types).toContain("claim_taken_over");
    expect(types.indexOf("claim_taken_over")).toBeGreaterThan(types.indexOf("looked_up"));
    expect(types.indexOf("claim_taken_over")).toBeLessThan(types.indexOf("denied"));
  });
});
