// Webhook events for a request's whole lifecycle, the Slack-compatible format, CIBA pings through
// the same outbox, and the per-account cap on operator notices (a flood of requests must not flood the operator).
import { runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { RequestSummary } from "../../durable-objects/account/account-types";
import { verifyWebhook } from "../../core/webhook-signature";
import { admin, approve, call, newAgent, poll, requestCredential, type Answer } from "./support/api";
import { captureEmail, captureOutbound, decodeBody, until } from "./support/outbound";
import { accountObject, advanceAndRunAlarm, eventually, outboxRows } from "./support/outbox";
import type { AccountUpdatedBody, AgentCreatedBody, AuditLogBody, BackchannelAuthenticationBody, DecideAnswerBody, LookupAnswerBody, TokenBody } from "../../core/wire";

afterEach(() => vi.restoreAllMocks());
// Every new account emails its owner an invitation: captured from the start, since a real send through
// the local send_email binding leaves a later test's spy on it unseen.
beforeEach(() => void captureEmail());

const CIBA_GRANT = "urn:openid:params:grant-type:ciba";
const basic = (id: string, secret: string) => ({ Authorization: `Basic ${btoa(`${id}:${secret}`)}` });

async function withWebhook(path: string, format?: "keyferry" | "slack", agentName?: string) {
  const emails = captureEmail();
  const hooks = captureOutbound(undefined, (url) => url.endsWith(`/${path}`));
  const agent = await newAgent();
  if (agentName) {
    const renamed = await call<Answer<AgentCreatedBody>>("POST", `/v1/admin/accounts/${agent.accountId}/agents`, { headers: admin, json: { name: agentName } });
    Object.assign(agent, { agentId: renamed.body.agent_id, apiKey: renamed.body.api_key });
  }
  const patched = await call<Answer<AccountUpdatedBody>>("PATCH", `/v1/admin/accounts/${agent.accountId}`, {
    headers: admin,
    json: { webhook_url: `https://hooks.example.com/${path}`, ...(format ? { webhook_format: format } : {}) },
  });
  expect(patched.status).toBe(200);
  return { ...agent, emails, hooks, secret: patched.body.webhook_secret as string };
}

/** The fields of a sent webhook event these tests read by name; the rest they match as objects. */
interface SentEvent {
  id: string;
  type: string;
  request: { id: string; agent: { id: string } };
  held_back_by_type?: Record<string, number>;
}
const events = (hooks: Array<{ body: string }>) => hooks.map((hook) => JSON.parse(hook.body) as SentEvent);

function summary(accountId: string, agentId: string, requestId = `req_${crypto.randomUUID().replace(/-/g, "").slice(0, 20)}`): RequestSummary {
  return {
    requestId,
    accountId,
    agent: { id: agentId, name: "build-bot", email: null },
    description: "Stripe secret key",
    vaultKey: "stripe-sk",
    expiresAt: Date.now() + 60_000,
    bindingMessage: null,
    protocol: "ciba",
  };
}

describe("webhook events for the whole lifecycle", () => {
  it("requested, approved by the operator, delivered: three signed events, none with the credential", async () => {
    const { apiKey, operatorEmail, hooks, secret } = await withWebhook("life");
    const issued = await requestCredential(apiKey);
    await until(() => hooks[0], "credential.requested");
    await approve(issued.body.user_code, operatorEmail, "sk_live_never_in_a_webhook");
    expect((await poll(issued.body.device_code)).body.credential_value).toBe("sk_live_never_in_a_webhook");
    await until(() => (hooks.length >= 3 ? hooks : undefined), "three events");
    const sent = events(hooks);
    expect(sent.map((e) => e.type)).toEqual(["credential.requested", "credential.approved", "credential.delivered"]);
    expect(new Set(sent.map((e) => e.id)).size).toBe(3);
    expect(new Set(sent.map((e) => e.request.id)).size).toBe(1);
    expect(sent[1]).toMatchObject({ decided_by: operatorEmail, request: { vault_key: "stripe-sk" } });
    for (const hook of hooks) {
      expect(hook.body).not.toContain("sk_live_never_in_a_webhook");
      expect(await verifyWebhook(secret, hook.body, hook.headers.get("Keyferry-Signature"))).toBe(true);
      expect(hook.headers.get("Keyferry-Event-Id")).toBe(JSON.parse(hook.body).id);
    }
  });

  it("a denial is credential.denied; expiry and a replay (from the request's object) are credential.expired and .replayed", async () => {
    const { apiKey, accountId, agentId, operatorEmail, hooks, emails } = await withWebhook("endings");
    const issued = await requestCredential(apiKey);
    const looked = await call<Answer<LookupAnswerBody>>("POST", "/v1/approvals/lookup", { json: { user_code: issued.body.user_code, email: operatorEmail } });
    await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", {
      headers: { Cookie: looked.headers.get("Set-Cookie")!.split(";")[0]! },
      json: { approval_token: looked.body.approval_token, decision: "deny" },
    });
    await until(() => (hooks.length >= 2 ? hooks : undefined), "the denial");
    expect(events(hooks)[1]).toMatchObject({ type: "credential.denied", decided_by: operatorEmail });

    // The RequestDO reports these through the same RPC as every audit event.
    const account = accountObject(accountId);
    await account.recordRequestEvent({ type: "expired", requestId: "req_a", agentId, request: summary(accountId, agentId, "req_a") });
    await account.recordRequestEvent({
      type: "replay_detected",
      requestId: "req_b",
      agentId,
      detail: { ip: "203.0.113.9", user_agent: "curl/8" },
      request: summary(accountId, agentId, "req_b"),
    });
    await until(() => (hooks.length >= 4 ? hooks : undefined), "expired and replayed");
    expect(events(hooks).slice(2)).toMatchObject([
      { type: "credential.expired", request: { id: "req_a" } },
      { type: "credential.replayed", request: { id: "req_b" }, caller: { ip: "203.0.113.9", user_agent: "curl/8" } },
    ]);
    // The replay also emails the operator (the first email was the request's own).
    const replayMail = await until(() => emails.find((e) => decodeBody(e.raw).includes("polled again")), "the replay email");
    expect(replayMail.to).toBe(operatorEmail);
    expect(decodeBody(replayMail.raw)).toContain("203.0.113.9");
  });
});

describe('webhook_format: "slack"', () => {
  it("posts {text} with agent, account, vault key, time left and the link; follow-ups read as replies; hostile text is escaped", async () => {
    const { apiKey, operatorEmail, hooks, secret } = await withWebhook("slack", "slack", "<!channel> bot & co");
    const issued = await requestCredential(apiKey, { description: "Deploy key <https://evil.example|click>" });
    const first = await until(() => hooks[0], "the chat message");
    const message = JSON.parse(first.body);
    expect(Object.keys(message)).toEqual(["text"]);
    expect(message.text).toContain("`&lt;!channel&gt; bot &amp; co` asks for `stripe-sk`: https://keyferry.test/approve#link=");
    expect(message.text).toContain("`Deploy key &lt;https://evil.example|click&gt;`");
    expect(message.text).not.toContain("<!channel>");
    expect(message.text).toMatch(/about 10 min left/);
    expect(message.text).toContain("Account Acme");
    expect(await verifyWebhook(secret, first.body, first.headers.get("Keyferry-Signature"))).toBe(true);
    await approve(issued.body.user_code, operatorEmail, "v");
    await poll(issued.body.device_code);
    await until(() => (hooks.length >= 3 ? hooks : undefined), "the follow-ups");
    expect(JSON.parse(hooks[1]!.body).text).toContain(`approved by ${operatorEmail}`);
    expect(JSON.parse(hooks[2]!.body).text).toContain("delivered");
  });

  it("refuses an unknown format, naming the field, and shows the format on the account", async () => {
    const { accountId } = await newAgent();
    const bad = await call<Answer<AccountUpdatedBody>>("PATCH", `/v1/admin/accounts/${accountId}`, { headers: admin, json: { webhook_format: "teams" } });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: "invalid_request", error_description: expect.stringContaining("webhook_format") });
    expect((await call<Answer<AccountUpdatedBody>>("GET", `/v1/admin/accounts/${accountId}`, { headers: admin })).body.webhook_format).toBe("keyferry");
    await call<Answer<AccountUpdatedBody>>("PATCH", `/v1/admin/accounts/${accountId}`, { headers: admin, json: { webhook_format: "slack" } });
    expect((await call<Answer<AccountUpdatedBody>>("GET", `/v1/admin/accounts/${accountId}`, { headers: admin })).body.webhook_format).toBe("slack");
  });
});

describe("CIBA ping through the outbox", () => {
  it("is stored with the decision and retried after a failure, with the client's token", async () => {
    const emails = captureEmail();
    const pings = captureOutbound((_r, n) => new Response(null, { status: n === 1 ? 500 : 204 }), (url) => url.endsWith("/ciba-retried"));
    const { accountId } = await newAgent();
    const agent = await call<Answer<AgentCreatedBody>>("POST", `/v1/admin/accounts/${accountId}/agents`, {
      headers: admin,
      json: { name: "pinged", backchannel_client_notification_endpoint: "https://hooks.example.com/ciba-retried" },
    });
    const auth = basic(agent.body.agent_id, agent.body.api_key);
    const started = await call<Answer<BackchannelAuthenticationBody>>("POST", "/oauth/bc-authorize", { headers: auth, form: { description: "d", vault_key: "ping-retried", client_notification_token: "agent-callback-secret" } });
    const email = await until(() => emails.find((e) => decodeBody(e.raw).includes("ping-retried")), "the email");
    const link = decodeBody(email.raw).match(/approve#link=([\w.-]+)/)![1]!;
    const looked = await call<Answer<LookupAnswerBody>>("POST", "/v1/approvals/lookup", { json: { link_token: link } });
    await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", {
      headers: { Cookie: looked.headers.get("Set-Cookie")!.split(";")[0]! },
      json: { approval_token: looked.body.approval_token, decision: "approve", credential_value: "pinged-value" },
    });
    await until(() => pings[0], "the first ping");
    const row = await eventually(async () => (await outboxRows(accountId)).find((r) => r.channel === "ping" && r.last_status === 500), "a rescheduled ping");
    await advanceAndRunAlarm(accountId, Math.max(0, row.next_at - Date.now()) + 1);
    const retried = await until(() => pings[1], "the retried ping");
    expect(retried.body).toBe(pings[0]!.body);
    expect(retried.headers.get("Authorization")).toBe("Bearer agent-callback-secret");
    expect(JSON.parse(retried.body)).toEqual({ auth_req_id: started.body.auth_req_id });
    const token = await call<Answer<TokenBody>>("POST", "/oauth/token", { headers: auth, form: { grant_type: CIBA_GRANT, auth_req_id: started.body.auth_req_id } });
    expect(token.body.access_token).toBe("pinged-value");
  });
});

describe("the notification cap", () => {
  it("sends a burst of notices one by one, holds back the rest, and sends one summary when the window ends", async () => {
    const { accountId, agentId, hooks, emails } = await withWebhook("flood");
    const account = accountObject(accountId);
    // 30 short-lived requests ending at once (requested_expiry churn), as their objects report them.
    for (let i = 0; i < 30; i++) {
      const request = summary(accountId, agentId);
      await account.recordRequestEvent({ type: "expired", requestId: request.requestId, agentId, request });
    }
    // NOTIFY_BURST is 20: 20 events go out, 10 are held back (the audit log keeps all 30).
    await until(() => (hooks.length >= 20 ? hooks : undefined), "the burst");
    expect((await outboxRows(accountId)).filter((r) => r.channel === "webhook")).toEqual([]);
    expect(hooks).toHaveLength(20);
    const audit = await call<Answer<AuditLogBody>>("GET", `/v1/admin/accounts/${accountId}/audit`, { headers: admin });
    expect(audit.body.events.filter((e: { type: string }) => e.type === "expired")).toHaveLength(30);

    await advanceAndRunAlarm(accountId, 10 * 60_000 + 1);
    const summaryHook = await until(() => hooks[20], "the summary");
    expect(JSON.parse(summaryHook.body)).toMatchObject({ type: "notifications.summarized", account_id: accountId, held_back: 10, held_back_by_type: { "credential.expired": 10 } });
    const mail = await until(() => emails.find((e) => decodeBody(e.raw).includes("held back")), "the summary email");
    expect(decodeBody(mail.raw)).toContain("10 more Keyferry notifications were held back");
    expect(decodeBody(mail.raw)).toContain("because too many came at once: 10 credential.expired.");
    // A new window: notices go out one by one again.
    const request = summary(accountId, agentId);
    await account.recordRequestEvent({ type: "expired", requestId: request.requestId, agentId, request });
    await until(() => hooks[21], "a notice in the next window");
    expect(hooks).toHaveLength(22);
  });

  it("stores nothing for the window while nothing is held back: a quiet account's notice writes no row for the cap", async () => {
    const { accountId, agentId, hooks } = await withWebhook("sliding");
    const account = accountObject(accountId);
    const windowRows = () => runInDurableObject(account, (_i, state) => state.storage.sql.exec("SELECT started_at, held_back FROM notice_window").toArray());
    const expire = async () => {
      const request = summary(accountId, agentId);
      await account.recordRequestEvent({ type: "expired", requestId: request.requestId, agentId, request });
    };
    // Notices within the burst: sent, and the window is read from the log (no row opens it).
    for (let i = 0; i < 20; i++) await expire();
    await until(() => (hooks.length >= 20 ? hooks : undefined), "the burst");
    expect(await windowRows()).toEqual([]);
    // The 21st is held back: only now is a row written, for its summary.
    await expire();
    expect(await windowRows()).toHaveLength(1);
    // Half a window later the 20 sent and the 1 held back are still within the last window: held back,
    // counted on the same row.
    await advanceAndRunAlarm(accountId, 5 * 60_000);
    await expire();
    expect(JSON.parse(String((await windowRows())[0]!.held_back))).toEqual({ "credential.expired": 2 });
    expect(hooks).toHaveLength(20);
  });

  it("never holds back a security alert: after a full burst from agent B, a replay of agent A's code is sent, webhook and email", async () => {
    const { accountId, agentId, apiKey, operatorEmail, hooks, emails } = await withWebhook("alerts");
    const other = await call<Answer<AgentCreatedBody>>("POST", `/v1/admin/accounts/${accountId}/agents`, { headers: admin, json: { name: "noisy-b" } });
    const account = accountObject(accountId);
    // Agent B's 20 notices fill the burst; its 21st is held back.
    for (let i = 0; i < 21; i++) {
      const request = { ...summary(accountId, other.body.agent_id!), description: `noise ${i}` };
      await account.recordRequestEvent({ type: "expired", requestId: request.requestId, agentId: request.agent.id, request });
    }
    await until(() => (hooks.length >= 20 ? hooks : undefined), "the burst");
    // Agent A's code, delivered, then polled again: the replay alarm.
    const issued = await requestCredential(apiKey);
    await approve(issued.body.user_code, operatorEmail, "sk_alert");
    expect((await poll(issued.body.device_code)).status).toBe(200);
    expect((await poll(issued.body.device_code)).body.error).toBe("invalid_grant");
    const replayed = await until(() => events(hooks).find((e) => e.type === "credential.replayed"), "the replay webhook");
    expect(replayed.request.agent.id).toBe(agentId);
    await until(() => emails.find((e) => /Replayed credential request/.test(e.raw)), "the replay email");
    // The other notices of this window (A's request, approval, delivery) were held back and are summarized by type.
    await advanceAndRunAlarm(accountId, 10 * 60_000 + 1);
    const summarized = await until(() => events(hooks).find((e) => e.type === "notifications.summarized"), "the summary");
    expect(summarized.held_back_by_type).toEqual({ "credential.expired": 1, "credential.requested": 1, "credential.approved": 1, "credential.delivered": 1 });
  });
});
