/**
 * N-of-M approval (README, "Approval policies (N-of-M)") in workerd with real storage: two operators,
 * each with their own passkey (the software authenticator) and console session, approve one request.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { requestStub } from "../../worker/stubs";
import type { AccountDetailBody, ErrorBody } from "../../core/wire";
import { admin, approve, auditUntil, call, lookupAs, newAgent, normalized, poll, requestCredential, type Answer } from "./support/api";
import { consoleApprove, consoleDeny, listed, policyAccount, setPolicy } from "./support/approval-policy";
import { digestOf } from "./support/passkey-decisions";
import { deviceCodeProtocols, openWait } from "./support/wait";
import { expireAndRunAlarm } from "./support/expiry";
import { storedRow } from "./support/request-row";
import { captureEmail, captureOutbound, until } from "./support/outbound";

const VALUE = "sk_live_two_people";

async function expectPending(deviceCode: string) {
  const answer = await poll(deviceCode);
  expect([answer.status, answer.body.error]).toEqual([400, "authorization_pending"]);
}

/** What the request's object holds as its `payload`. */
const storedPayload = (userCode: string) => runInDurableObject(requestStub(env, normalized(userCode)), (_i, state) => storedRow(state).payload);

/** A covered request, pending in both consoles. */
async function coveredRequest(vaultKey = "stripe-sk") {
  const account = await policyAccount();
  const issued = await requestCredential(account.apiKey, { vault_key: vaultKey });
  const request = (await listed(account.operators[0], vaultKey))!;
  return { ...account, issued: issued.body, requestId: request.request_id, first: account.operators[0], second: account.operators[1] };
}

describe("PATCH approval_policy", () => {
  it("stores a policy, returns it from PATCH and GET, and null puts it back to one approval", async () => {
    const { accountId } = await newAgent();
    const initial = await call<AccountDetailBody>("GET", `/v1/admin/accounts/${accountId}`, { headers: admin });
    expect(initial.body.approval_policy).toEqual({ approvals_required: 1 });
    const patched = await setPolicy(accountId, { approvals_required: 3, vault_keys: ["prod-*", "stripe-sk"] });
    expect(patched.status).toBe(200);
    expect(patched.body.approval_policy).toEqual({ approvals_required: 3, vault_keys: ["prod-*", "stripe-sk"] });
    const read = await call<AccountDetailBody>("GET", `/v1/admin/accounts/${accountId}`, { headers: admin });
    expect(read.body.approval_policy).toEqual({ approvals_required: 3, vault_keys: ["prod-*", "stripe-sk"] });
    expect((await setPolicy(accountId, null)).body.approval_policy).toEqual({ approvals_required: 1 });
  });

  it("refuses a bad policy with 400 in the error shape, naming the field, and changes nothing", async () => {
    const { accountId } = await newAgent();
    await setPolicy(accountId, { approvals_required: 2, vault_keys: ["prod-*"] });
    const bad: unknown[] = [
      { approvals_required: 0 },
      { approvals_required: 6 },
      { approvals_required: 2.5 },
      { approvals_required: "2" },
      {},
      "two",
      [],
      { approvals_required: 2, vault_keys: [] },
      { approvals_required: 2, vault_keys: "prod-*" },
      { approvals_required: 2, vault_keys: [""] },
      { approvals_required: 2, vault_keys: ["prod/*"] },
      { approvals_required: 2, vault_keys: ["<script>"] },
      { approvals_required: 2, vault_keys: ["x".repeat(161)] },
      { approvals_required: 2, vault_keys: Array.from({ length: 33 }, (_, i) => `k${i}`) },
      { approvals_required: 2, vault_keys: [7] },
    ];
    for (const policy of bad) {
      const answer = await setPolicy(accountId, policy);
      expect([JSON.stringify(policy), answer.status, answer.body.error]).toEqual([JSON.stringify(policy), 400, "invalid_request"]);
      expect(Object.keys(answer.body).sort()).toEqual(["error", "error_description"]);
      expect((answer.body as ErrorBody).error_description).toContain("approval_policy");
    }
    const read = await call<AccountDetailBody>("GET", `/v1/admin/accounts/${accountId}`, { headers: admin });
    expect(read.body.approval_policy).toEqual({ approvals_required: 2, vault_keys: ["prod-*"] });
    const audit = await auditUntil(accountId, (events) => events.some((e) => e.type === "account_updated"));
    expect(audit.filter((e) => e.type === "account_updated")).toHaveLength(1);
  });
});

describe("a request that needs two operators", () => {
  it("stays pending after the first approval, the return channel silent; the second delivers; the audit lists both", async () => {
    const { issued, requestId, first, second, accountId } = await coveredRequest();
    const waiter = await openWait(deviceCodeProtocols(issued.device_code));
    expect(waiter.status).toBe(101);
    const listedBefore = (await listed(first))!;
    expect(listedBefore).toMatchObject({ approvals_required: 2, approvals: [] });
    expect(listedBefore.payload_sha256).toBeUndefined();

    const one = await consoleApprove(first, requestId, { value: VALUE });
    expect([one.status, one.body]).toEqual([200, { status: "awaiting_approvals", approvals: 1, required: 2 }]);
    await expectPending(issued.device_code);
    expect(waiter.messages).toEqual([]);
    // The stored credential is the JWE the agent will receive; the console shows its digest, not the value's.
    const stored = (await storedPayload(issued.user_code))!;
    expect(stored.split(".")).toHaveLength(5);
    const shown = (await listed(second))!;
    expect(shown).toMatchObject({ approvals_required: 2, approvals: [{ operator_id: first.operatorId, email: first.email }], payload_sha256: await digestOf(stored) });
    expect(shown.payload_sha256).not.toBe(await digestOf(VALUE));

    const two = await consoleApprove(second, requestId);
    expect([two.status, two.body]).toEqual([200, { status: "approved" }]);
    expect(await waiter.message).toEqual({ type: "decided", status: "approved" });
    // One message, the decision's: nothing was said after the first approval.
    expect(waiter.messages).toHaveLength(1);
    const delivered = await poll(issued.device_code);
    expect([delivered.status, delivered.body.credential_value]).toEqual([200, VALUE]);

    const events = await auditUntil(accountId, (e) => e.some((event) => event.type === "approved"));
    const approved = events.find((e) => e.type === "approved")!;
    expect(approved.actor).toMatchObject({ operator_id: second.operatorId, email: second.email });
    expect(approved.detail!.approvers).toEqual([
      { operator_id: first.operatorId, email: first.email, passkey_id: expect.any(String), at: expect.any(String) },
      { operator_id: second.operatorId, email: second.email, passkey_id: expect.any(String), at: expect.any(String) },
    ]);
    const partial = events.find((e) => e.type === "partially_approved")!;
    expect(partial).toMatchObject({ request_id: requestId, actor: { operator_id: first.operatorId }, detail: { approvals: 1, required: 2 } });
    expect(events.filter((e) => e.type === "approved")).toHaveLength(1);
  });

  it("counts the same operator once: 409 already_approved, and the request stays pending", async () => {
    const { issued, requestId, first } = await coveredRequest();
    expect((await consoleApprove(first, requestId, { value: VALUE })).status).toBe(200);
    const again = await consoleApprove(first, requestId);
    expect([again.status, again.body.error]).toEqual([409, "already_approved"]);
    await expectPending(issued.device_code);
  });

  it("refuses a second approval whose passkey signed another digest than the stored credential's", async () => {
    const { issued, requestId, first, second } = await coveredRequest();
    expect((await consoleApprove(first, requestId, { value: VALUE })).status).toBe(200);
    const other = await consoleApprove(second, requestId, { payloadSha256: await digestOf("sk_live_attacker") });
    expect([other.status, other.body.error]).toEqual([403, "access_denied"]);
    // Nor may a later approver bring a credential of their own, whatever their passkey signed.
    const swapped = await consoleApprove(second, requestId, { value: "sk_live_attacker" });
    expect([swapped.status, swapped.body.error]).toEqual([400, "invalid_request"]);
    const added = await consoleApprove(second, requestId, { value: "sk_live_attacker", payloadSha256: (await listed(second))!.payload_sha256 });
    expect([added.status, added.body.error]).toEqual([400, "invalid_request"]);
    await expectPending(issued.device_code);
    expect((await consoleApprove(second, requestId)).body).toEqual({ status: "approved" });
    expect((await poll(issued.device_code)).body.credential_value).toBe(VALUE);
  });

  it("ends as access_denied when the other operator denies after the first approval, the stored credential erased", async () => {
    const { issued, requestId, first, second } = await coveredRequest();
    const waiter = await openWait(deviceCodeProtocols(issued.device_code));
    expect((await consoleApprove(first, requestId, { value: VALUE })).status).toBe(200);
    expect((await consoleDeny(second, requestId)).body).toEqual({ status: "denied" });
    expect(await waiter.message).toEqual({ type: "decided", status: "denied" });
    expect((await poll(issued.device_code)).body.error).toBe("access_denied");
    expect(await storedPayload(issued.user_code)).toBeNull();
  });

  it("covers only the vault keys its globs match: another request needs one approval", async () => {
    const account = await policyAccount({ approvals_required: 2, vault_keys: ["prod-*"] });
    const other = await requestCredential(account.apiKey, { vault_key: "staging-db" });
    const covered = await requestCredential(account.apiKey, { vault_key: "prod-db" });
    const otherListed = (await listed(account.operators[0], "staging-db"))!;
    expect(otherListed.approvals_required).toBeUndefined();
    expect((await consoleApprove(account.operators[0], otherListed.request_id, { value: VALUE })).body).toEqual({ status: "approved" });
    expect((await poll(other.body.device_code)).body.credential_value).toBe(VALUE);
    const coveredListed = (await listed(account.operators[0], "prod-db"))!;
    expect((await consoleApprove(account.operators[0], coveredListed.request_id, { value: VALUE })).body).toMatchObject({ status: "awaiting_approvals" });
    await expectPending(covered.body.device_code);
  });

  it("tells the approval page's look-up the approvals of a covered request only, and the digest once one exists", async () => {
    const account = await policyAccount({ approvals_required: 2, vault_keys: ["prod-*"] });
    const [first] = account.operators;
    const other = await requestCredential(account.apiKey, { vault_key: "staging-db" });
    const covered = await requestCredential(account.apiKey, { vault_key: "prod-db" });
    const otherLooked = await lookupAs(other.body.user_code, first.email);
    expect(otherLooked.status).toBe(200);
    for (const field of ["approvals_required", "approvals", "payload_sha256"]) expect(otherLooked.body.request).not.toHaveProperty(field);
    const before = await lookupAs(covered.body.user_code, first.email);
    expect(before.body.request).toMatchObject({ approvals_required: 2, approvals: [] });
    expect(before.body.request).not.toHaveProperty("payload_sha256");

    const requestId = (await listed(first, "prod-db"))!.request_id;
    expect((await consoleApprove(first, requestId, { value: VALUE })).status).toBe(200);
    const after = await lookupAs(covered.body.user_code, first.email);
    expect(after.body.request).toMatchObject({
      approvals_required: 2,
      approvals: [{ operator_id: first.operatorId, email: first.email }],
      payload_sha256: await digestOf((await storedPayload(covered.body.user_code))!),
    });
  });

  it("keeps the rule it was issued under when the policy changes in flight", async () => {
    const { issued, requestId, first, accountId } = await coveredRequest();
    expect((await setPolicy(accountId, null)).status).toBe(200);
    expect((await consoleApprove(first, requestId, { value: VALUE })).body).toMatchObject({ status: "awaiting_approvals", required: 2 });
    await expectPending(issued.device_code);
  });

  it("is erased whole by the TTL alarm, the stored credential with it", async () => {
    const { issued, requestId, first } = await coveredRequest();
    expect((await consoleApprove(first, requestId, { value: VALUE })).status).toBe(200);
    expect(await expireAndRunAlarm(requestStub(env, normalized(issued.user_code)))).toEqual({ ran: true, tables: [], keys: [] });
  });
});

describe("webhook events of a request that needs two operators", () => {
  afterEach(() => vi.restoreAllMocks());

  it("sends no credential.approved at the first approval, then one naming both approvers", async () => {
    captureEmail();
    const path = `nofm-${crypto.randomUUID()}`;
    const hooks = captureOutbound(undefined, (url) => url.endsWith(`/${path}`));
    const { issued, requestId, first, second, accountId } = await coveredRequest();
    const patched = await call<Answer>("PATCH", `/v1/admin/accounts/${accountId}`, { headers: admin, json: { webhook_url: `https://hooks.example.com/${path}` } });
    expect(patched.status).toBe(200);
    const types = () => hooks.map((hook) => (JSON.parse(hook.body) as { type: string }).type);

    expect((await consoleApprove(first, requestId, { value: VALUE })).status).toBe(200);
    // The partial approval's audit event and any notice it caused are written in one transaction.
    await auditUntil(accountId, (events) => events.some((e) => e.type === "partially_approved"));
    expect(types()).not.toContain("credential.approved");

    expect((await consoleApprove(second, requestId)).status).toBe(200);
    const approved = await until(() => hooks.map((hook) => JSON.parse(hook.body) as Record<string, unknown>).find((event) => event.type === "credential.approved"), "credential.approved");
    expect(approved).toMatchObject({
      decided_by: second.email,
      approvers: [
        { operator_id: first.operatorId, email: first.email },
        { operator_id: second.operatorId, email: second.email },
      ],
    });
    expect(JSON.stringify(hooks)).not.toContain(VALUE);
    expect((await poll(issued.device_code)).status).toBe(200);
    // The delivery's event too, so that no notice of this test is sent after its mock is gone.
    await until(() => (types().includes("credential.delivered") ? true : undefined), "credential.delivered");
    expect(types().filter((type) => type === "credential.approved")).toHaveLength(1);
  });
});

describe("a covered request in an account without passkeys", () => {
  it("cannot be approved under the email binding (passkey_required), and can be denied", async () => {
    const { apiKey, accountId, operatorEmail } = await newAgent(`op-${crypto.randomUUID()}@example.com`);
    expect((await setPolicy(accountId, { approvals_required: 2 })).status).toBe(200);
    const issued = await requestCredential(apiKey);
    const { looked, decided } = await approve(issued.body.user_code, operatorEmail, VALUE);
    expect([decided.status, decided.body.error]).toEqual([403, "passkey_required"]);
    await expectPending(issued.body.device_code);
    const denied = await call<Answer>("POST", "/v1/approvals/decide", { headers: { Cookie: looked.cookie! }, json: { approval_token: looked.body.approval_token, decision: "deny" } });
    expect(denied.status).toBe(200);
    expect((await poll(issued.body.device_code)).body.error).toBe("access_denied");
  });
});
