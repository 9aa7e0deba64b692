/**
 * The console's routes with real sessions: operators enrolled with the software authenticator
 * (support/soft-authenticator.ts), approvers against owners, two accounts kept apart, and bad input
 * answered in the error shape, never a 500.
 */
import { exports } from "cloudflare:workers";
import { base64url, exportJWK, generateKeyPair } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { admin, bearer, call, encryptForRequest, poll, requestCredential, type Answer } from "./support/api";
import { consoleHeaders, enrol, invitationOf, newAccountWithOwner } from "./support/operators";
import type { SoftAuthenticator } from "./support/soft-authenticator";
import type {
  AgentCreatedBody,
  AgentListBody,
  AuditLogBody,
  ConsoleRequestsBody,
  DecideAnswerBody,
  DeviceAuthorizationBody,
  NotificationSettingsBody,
  OperatorInvitedBody,
  OperatorListBody,
  PasskeyChallengeAnswerBody,
} from "../../core/wire";

interface Operator {
  cookie: string;
  authenticator: SoftAuthenticator;
  operatorId: string;
}

interface Account {
  accountId: string;
  owner: Operator;
  approver: Operator;
  apiKey: string;
  agentId: string;
}

async function enrolled(invitation: string, operatorId: string): Promise<Operator> {
  const { cookie, authenticator, enrolled: answer } = await enrol(invitation);
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  return { cookie: cookie!, authenticator, operatorId };
}

async function newAccount(): Promise<Account> {
  const made = await newAccountWithOwner();
  const owner = await enrolled(made.invitation, made.operatorId);
  const invited = await call<Answer<OperatorInvitedBody>>("POST", `/v1/admin/accounts/${made.accountId}/operators`, {
    headers: admin,
    json: { email: `approver-${crypto.randomUUID()}@example.com`, role: "approver" },
  });
  expect(invited.status).toBe(201);
  const approver = await enrolled(invitationOf(invited.body.invitation_url), invited.body.operator_id);
  const agent = await call<Answer<AgentCreatedBody>>("POST", `/v1/admin/accounts/${made.accountId}/agents`, { headers: admin, json: { name: "build-bot", email: "bot@example.com" } });
  return { accountId: made.accountId, owner, approver, apiKey: agent.body.api_key, agentId: agent.body.agent_id };
}

/** As the page calls: the cookie and the Origin, and a JSON body on every change (DELETE too). `T`: the success body expected. */
const asOperator = <T = object>(operator: Operator, method: string, path: string, json?: unknown) =>
  call<Answer<T>>(method, path, { headers: consoleHeaders(operator.cookie), ...(method === "GET" ? {} : { json: json ?? {} }) });

/** The console's live socket, opened as the page opens it. */
async function openLive(cookie: string) {
  const response = await exports.default.fetch(
    new Request("https://keyferry.test/v1/console/requests/live", { headers: { Upgrade: "websocket", Origin: "https://keyferry.test", Cookie: cookie } }),
  );
  expect(response.status).toBe(101);
  const ws = response.webSocket!;
  ws.accept();
  const first = new Promise<string>((resolve) => ws.addEventListener("message", (event) => resolve(String(event.data))));
  const closed = new Promise<number>((resolve) => ws.addEventListener("close", (event) => resolve(event.code)));
  return { ws, first, closed };
}

const payloadSha256 = async (jwe: string) => base64url.encode(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(jwe))));

/** What the console page does: challenge, assertion, decision. */
async function decideInConsole(operator: Operator, requestId: string, decision: { decision: "deny" } | { decision: "approve"; credential_jwe: string }) {
  const base = `/v1/console/requests/${requestId}`;
  const challenge = await asOperator<PasskeyChallengeAnswerBody>(operator, "POST", `${base}/challenge`, {
    decision: decision.decision,
    ...(decision.decision === "approve" ? { payload_sha256: await payloadSha256(decision.credential_jwe) } : {}),
  });
  expect(challenge.status, JSON.stringify(challenge.body)).toBe(200);
  const webauthn = await operator.authenticator.assert(challenge.body.public_key);
  return asOperator<DecideAnswerBody>(operator, "POST", `${base}/decide`, { ...decision, webauthn });
}

async function pendingOf(operator: Operator) {
  const listed = await asOperator<ConsoleRequestsBody>(operator, "GET", "/v1/console/requests");
  expect(listed.status).toBe(200);
  return listed.body.requests;
}

describe("/v1/console/* with a session", () => {
  let acme: Account;
  let other: Account;

  // Four enrolments: on two shared cores that can take longer than vitest's 10 s default for a hook.
  beforeAll(async () => {
    acme = await newAccount();
    other = await newAccount();
  }, 60_000);

  it("lists the account's pending requests, agent text as sent, and approves one with a passkey", async () => {
    const issued = await requestCredential(acme.apiKey, { description: "<img src=x onerror=alert(1)> deploy", vault_key: "deploy-key" });
    const requests = await pendingOf(acme.approver);
    const listed = requests.find((r) => r.description.endsWith("deploy"))!;
    expect(listed).toMatchObject({
      request_id: expect.stringMatching(/^req_/),
      agent: { id: acme.agentId, name: "build-bot", email: "bot@example.com" },
      description: "<img src=x onerror=alert(1)> deploy",
      vault_key: "deploy-key",
      expires_at: expect.any(String),
    });
    expect(listed.fingerprint).toBeUndefined();
    // Another account's operators see none of it, and cannot reach it by its ID.
    expect((await pendingOf(other.owner)).map((r) => r.request_id)).not.toContain(listed.request_id);
    const foreign = await asOperator<PasskeyChallengeAnswerBody>(other.owner, "POST", `/v1/console/requests/${listed.request_id}/challenge`, { decision: "deny" });
    expect([foreign.status, foreign.body.error]).toEqual([404, "not_found"]);

    const jwe = await encryptForRequest(listed.encryption_key, "sk_live_console");
    const decided = await decideInConsole(acme.approver, listed.request_id, { decision: "approve", credential_jwe: jwe });
    expect([decided.status, decided.body]).toEqual([200, { status: "approved" }]);
    expect((await pendingOf(acme.approver)).map((r) => r.request_id)).not.toContain(listed.request_id);
    const delivered = await poll(issued.body.device_code);
    expect([delivered.status, delivered.body.credential_value]).toEqual([200, "sk_live_console"]);
  });

  it("shows an end-to-end request's fingerprint and refuses its credential in the clear", async () => {
    const { publicKey } = await generateKeyPair("ECDH-ES+A256KW", { crv: "P-256", extractable: true });
    const agentKey = await exportJWK(publicKey);
    await requestCredential(acme.apiKey, { vault_key: "e2e-key", public_key: agentKey });
    const listed = (await pendingOf(acme.owner)).find((r) => r.vault_key === "e2e-key")!;
    expect(listed.fingerprint).toMatch(/^[A-Z2-7]{4}(-[A-Z2-7]{4}){3}$/);
    const clear = await asOperator<DecideAnswerBody>(acme.owner, "POST", `/v1/console/requests/${listed.request_id}/decide`, { decision: "approve", credential_value: "x", webauthn: {} });
    expect(clear.status).toBe(400);
    expect(clear.body.error).toBe("invalid_request");
    const denied = await decideInConsole(acme.owner, listed.request_id, { decision: "deny" });
    expect([denied.status, denied.body]).toEqual([200, { status: "denied" }]);
  });

  it("gives approvers the requests and the audit log, and 403 on every owner-only call", async () => {
    expect((await asOperator(acme.approver, "GET", "/v1/console/audit")).status).toBe(200);
    const ownerOnly: Array<[string, string, unknown?]> = [
      ["GET", "/v1/console/agents"],
      ["POST", "/v1/console/agents", { name: "sneaky" }],
      ["DELETE", `/v1/console/agents/${acme.agentId}`],
      ["GET", "/v1/console/operators"],
      ["POST", "/v1/console/operators", { email: "friend@example.com", role: "owner" }],
      ["DELETE", `/v1/console/operators/${acme.owner.operatorId}`],
      ["GET", "/v1/console/settings"],
      ["PATCH", "/v1/console/settings", { webhook_format: "slack" }],
    ];
    for (const [method, path, json] of ownerOnly) {
      const answer = await asOperator(acme.approver, method, path, json);
      expect([answer.status, answer.body.error], `${method} ${path}`).toEqual([403, "access_denied"]);
    }
    // Nothing changed: the agent still works, the owner is still there.
    expect((await requestCredential(acme.apiKey, { vault_key: "still-works" })).status).toBe(200);
    const operators = await asOperator<OperatorListBody>(acme.owner, "GET", "/v1/console/operators");
    expect(operators.body.operators.map((o) => o.operator_id)).toContain(acme.owner.operatorId);
  });

  it("lets an owner create an agent (its key shown once), list and revoke it, in their own account only", async () => {
    const created = await asOperator<AgentCreatedBody>(acme.owner, "POST", "/v1/console/agents", { name: "console-made" });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: "console-made", account_id: acme.accountId, api_key: expect.stringMatching(/^kf1\./) });
    const listed = await asOperator<AgentListBody>(acme.owner, "GET", "/v1/console/agents");
    expect(listed.body.agents.map((a) => a.agent_id)).toContain(created.body.agent_id);
    expect(JSON.stringify(listed.body)).not.toContain(created.body.api_key);
    // Another account's owner cannot revoke it.
    const foreign = await asOperator(other.owner, "DELETE", `/v1/console/agents/${created.body.agent_id}`);
    expect([foreign.status, foreign.body.error]).toEqual([404, "not_found"]);
    expect((await asOperator(acme.owner, "DELETE", `/v1/console/agents/${created.body.agent_id}`)).status).toBe(204);
    expect((await call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", { headers: bearer(created.body.api_key), json: { description: "x", vault_key: "x" } })).status).toBe(401);
    const audit = await asOperator<AuditLogBody>(acme.owner, "GET", "/v1/console/audit");
    expect(audit.body.events).toEqual(expect.arrayContaining([expect.objectContaining({ type: "agent_deleted", agent_id: created.body.agent_id })]));
  });

  it("lets an owner invite and remove an operator, whose session then ends at once", async () => {
    const invited = await asOperator<OperatorInvitedBody>(acme.owner, "POST", "/v1/console/operators", { email: `temp-${crypto.randomUUID()}@example.com`, role: "approver" });
    expect(invited.status, JSON.stringify(invited.body)).toBe(201);
    const temp = await enrolled(invitationOf(invited.body.invitation_url), invited.body.operator_id);
    expect((await asOperator(temp, "GET", "/v1/console/requests")).status).toBe(200);
    const live = await openLive(temp.cookie);
    expect((await asOperator(acme.owner, "DELETE", `/v1/console/operators/${temp.operatorId}`)).status).toBe(204);
    // Their open console is closed at once (1008, policy), not left to hear of the account's requests.
    expect(await Promise.race([live.closed, new Promise((resolve) => setTimeout(() => resolve("still open"), 5_000))])).toBe(1008);
    const after = await asOperator<ConsoleRequestsBody>(temp, "GET", "/v1/console/requests");
    expect([after.status, after.body.error]).toEqual([401, "invalid_token"]);
  });

  it("lets an owner change the notification settings only, and validates them", async () => {
    const saved = await asOperator<NotificationSettingsBody>(acme.owner, "PATCH", "/v1/console/settings", { webhook_format: "slack" });
    expect([saved.status, saved.body]).toEqual([200, { webhook_url: null, webhook_format: "slack" }]);
    // The approval policy is shown, and only the admin API sets it (README, "Approval policies (N-of-M)").
    expect((await asOperator<NotificationSettingsBody>(acme.owner, "GET", "/v1/console/settings")).body).toEqual({
      webhook_url: null,
      webhook_format: "slack",
      approval_policy: { approvals_required: 1 },
    });
    const cases: Array<[unknown, string]> = [
      [{ webhook_url: "http://10.0.0.1/hook" }, "webhook_url"],
      [{ webhook_url: 42 }, "webhook_url"],
      [{ webhook_format: "xml" }, "webhook_format"],
      [{ operator_email: "takeover@example.com" }, "operator_email"],
      [{ approval_policy: { approvals_required: 1 } }, "approval_policy"],
    ];
    for (const [json, field] of cases) {
      const answer = await asOperator<NotificationSettingsBody>(acme.owner, "PATCH", "/v1/console/settings", json);
      expect([answer.status, answer.body.error], JSON.stringify(json)).toEqual([400, "invalid_request"]);
      expect(answer.body.error_description).toContain(field);
    }
  });

  it("answers bad input in the error shape, never a 500", async () => {
    const live = (await pendingOf(acme.owner))[0] ?? (await requestCredential(acme.apiKey, { vault_key: "bad-input" }), (await pendingOf(acme.owner))[0]!);
    const id = live.request_id;
    const malformed = await call<Answer<PasskeyChallengeAnswerBody>>("POST", `/v1/console/requests/${id}/challenge`, {
      headers: { ...consoleHeaders(acme.owner.cookie), "Content-Type": "application/json" },
      body: "{not json",
    });
    expect([malformed.status, malformed.body.error]).toEqual([400, "invalid_request"]);
    const cases: Array<[string, unknown, number]> = [
      [`/v1/console/requests/${id}/challenge`, { decision: "maybe" }, 400],
      [`/v1/console/requests/${id}/challenge`, { decision: "approve", payload_sha256: 7 }, 400],
      [`/v1/console/requests/${id}/challenge`, [], 400],
      [`/v1/console/requests/${id}/decide`, { decision: "deny", webauthn: "nope" }, 400],
      // No assertion: nothing is decided (401 passkey_required), the request stays pending.
      [`/v1/console/requests/${id}/decide`, { decision: "deny" }, 401],
      [`/v1/console/requests/${id}/decide`, { decision: "approve", credential_jwe: "not-a-jwe", webauthn: {} }, 400],
      [`/v1/console/requests/req_${"z".repeat(20)}/challenge`, { decision: "deny" }, 404],
      ["/v1/console/requests/req_nope/decide", { decision: "deny" }, 404],
      ["/v1/console/requests/req_nope/decide", { decision: "deny", webauthn: {} }, 400],
      ["/v1/console/requests/%00/challenge", { decision: "deny" }, 404],
      ["/v1/console/agents", { name: 5 }, 400],
      ["/v1/console/agents", { name: "" }, 400],
      ["/v1/console/operators", { email: "not-an-email" }, 400],
      ["/v1/console/operators", { email: "x@example.com", role: "admin" }, 400],
    ];
    for (const [path, json, status] of cases) {
      const answer = await asOperator(acme.owner, "POST", path, json);
      expect([answer.status, typeof answer.body.error, typeof answer.body.error_description], `${path} ${JSON.stringify(json)}`).toEqual([status, "string", "string"]);
    }
    for (const path of [`/v1/console/agents/agt_${"q".repeat(20)}`, "/v1/console/agents/nope", `/v1/console/operators/opr_${"q".repeat(20)}`, "/v1/console/operators/nope"]) {
      const answer = await asOperator(acme.owner, "DELETE", path);
      expect([answer.status, answer.body.error], path).toEqual([404, "not_found"]);
    }
    const huge = await asOperator<DecideAnswerBody>(acme.owner, "POST", `/v1/console/requests/${id}/decide`, { decision: "deny", webauthn: { pad: "x".repeat(200_000) } });
    expect([huge.status, huge.body.error]).toEqual([413, "invalid_request"]);
    // The request is still pending after all of it.
    expect((await pendingOf(acme.owner)).map((r) => r.request_id)).toContain(id);
  });

  it("refuses a real cookie whose tag was altered, at the edge", async () => {
    const cookie = acme.owner.cookie;
    const forged = cookie.slice(0, -1) + (cookie.endsWith("A") ? "B" : "A");
    const answer = await call<Answer<ConsoleRequestsBody>>("GET", "/v1/console/requests", { headers: { Cookie: forged } });
    expect([answer.status, answer.body.error]).toEqual([401, "invalid_token"]);
  });

  it("announces a new request on the live socket opened with the session", async () => {
    const live = await openLive(acme.approver.cookie);
    await requestCredential(acme.apiKey, { vault_key: "live-key" });
    expect(JSON.parse(await live.first)).toEqual({ type: "requests_changed" });
    live.ws.close();
  });
});
