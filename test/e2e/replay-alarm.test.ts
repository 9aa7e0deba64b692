// The replay alarm end to end (README, "Contract notes": replay alarm, webhook events): a delivered
// device code (or auth_req_id) polled again against a real `wrangler dev` is refused as before, and the
// operator hears of it once: a signed `credential.replayed` webhook at a local receiver, an email (the
// .eml file wrangler dev writes), and `replay_detected` in the audit log with the caller's IP and user agent.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyWebhook } from "../../core/webhook-signature";
import { createClient } from "../../sdk/src/index";
import { decide, lookup, operatorDecides, requestCredential } from "./support/approval";
import { api, createAccountAndAgent, type AccountAndAgent, type DevServer } from "./support/dev-server";
import { useDevServer } from "./support/use-dev-server";
import { useNotificationServer } from "./support/notification-server";
import { sentEmails, signatureIsValid, startReceiver, waitForEmail, type Received, type Receiver } from "./support/receiver";
import { sleep } from "../support/sleep";

interface Hook {
  id: string;
  type: string;
  created_at: string;
  request: { id: string; vault_key: string; [field: string]: unknown };
  caller?: { ip: string; user_agent: string };
}

interface AuditEvent {
  at: string;
  type: string;
  request_id?: string;
  agent_id?: string;
  detail?: Record<string, unknown>;
}

const uniqueVaultKey = (prefix: string) => `${prefix}-${randomBytes(4).toString("hex")}`;
const parse = (hit: Received) => JSON.parse(hit.body) as Hook;

describe("replay alarm against wrangler dev", () => {
  // One wrangler dev (polls every second, http webhooks allowed) and a loopback receiver.
  const notifications = useNotificationServer({ receiver: true });
  const { admin } = notifications;
  let server: DevServer;
  let hooks: Receiver;
  beforeAll(() => void ({ server, hooks } = notifications.started()));


  /** A fresh account whose webhook goes to the local receiver under its own path. */
  async function hookedAgent(name: string): Promise<AccountAndAgent & { secret: string; path: string }> {
    const agent = await createAccountAndAgent(server, { agentName: name, agentEmail: `${name}@example.com` });
    const path = `/hooks/${agent.accountId}`;
    const patched = await api<{ webhook_secret?: string }>(server, "PATCH", `/v1/admin/accounts/${agent.accountId}`, { webhook_url: `${hooks.origin}${path}` }, admin());
    expect(patched.status, patched.text).toBe(200);
    expect(typeof patched.json.webhook_secret).toBe("string");
    return { ...agent, secret: patched.json.webhook_secret!, path };
  }

  async function audit(accountId: string): Promise<AuditEvent[]> {
    const res = await api<{ events: AuditEvent[] }>(server, "GET", `/v1/admin/accounts/${accountId}/audit`, undefined, admin());
    expect(res.status, res.text).toBe(200);
    return res.json.events;
  }

  async function auditUntil(accountId: string, done: (events: AuditEvent[]) => boolean): Promise<AuditEvent[]> {
    for (const deadline = Date.now() + 30_000; ; await sleep(200)) {
      const events = await audit(accountId);
      if (done(events)) return events;
      if (Date.now() > deadline) throw new Error(`audit log never settled: ${JSON.stringify(events.map((e) => e.type))}`);
    }
  }

  const hooksOf = (agent: { path: string }, type: string) => hooks.received.filter((hit) => hit.path === agent.path && parse(hit).type === type);

  /** The request id that the account's `credential.delivered` webhook named. */
  async function deliveredRequestId(agent: { path: string }): Promise<string> {
    const [delivered] = await hooks.waitFor(1, 30_000, (h) => h.path === agent.path && parse(h).type === "credential.delivered");
    return parse(delivered!).request.id;
  }

  /**
   * Makes sure the account's notifications have caught up: a later request's `credential.requested`
   * webhook and audit event have arrived, so anything a replay would have caused before it is in too.
   */
  async function settleAccount(agent: AccountAndAgent & { path: string }, requestedBefore: number): Promise<AuditEvent[]> {
    const later = uniqueVaultKey("later");
    const asked = await requestCredential(server, agent.apiKey, { description: "A later request", vault_key: later });
    expect(asked.status, asked.text).toBe(200);
    await hooks.waitFor(1, 30_000, (hit) => hit.path === agent.path && parse(hit).type === "credential.requested" && parse(hit).request.vault_key === later);
    return auditUntil(agent.accountId, (events) => events.filter((e) => e.type === "requested").length === requestedBefore + 1);
  }

  /** Checks one replayed webhook: signed (independently and with the service's helper), its id in the header, no credential. */
  async function expectReplayedHook(agent: { secret: string }, hit: Received, requestId: string, vaultKey: string, credential: string, userAgent: string) {
    const signature = hit.headers["keyferry-signature"];
    expect(signatureIsValid(agent.secret, hit.body, signature)).toBe(true);
    expect(await verifyWebhook(agent.secret, hit.body, String(signature))).toBe(true);
    expect(signatureIsValid(agent.secret, hit.body.replace(vaultKey, "other-key"), signature)).toBe(false);
    const payload = parse(hit);
    expect(hit.headers["keyferry-event-id"]).toBe(payload.id);
    expect(payload).toMatchObject({
      id: expect.stringMatching(/^evt_[0-9a-f]{32}$/),
      type: "credential.replayed",
      created_at: expect.any(String),
      request: { id: requestId, vault_key: vaultKey },
      caller: { ip: expect.any(String), user_agent: userAgent },
    });
    expect(hit.body).not.toContain(credential);
    return payload;
  }

  it("a replayed device code is invalid_grant and reaches the operator's webhook, email and audit log exactly once", async () => {
    const agent = await hookedAgent("replayed-bot");
    const vaultKey = uniqueVaultKey("replayed");
    const credential = `sk-replayed-${randomBytes(12).toString("hex")}`;
    const issued = await requestCredential(server, agent.apiKey, { description: "Replayed key", vault_key: vaultKey });
    expect(issued.status, issued.text).toBe(200);
    await operatorDecides(server, issued.json.user_code, agent.operatorEmail, { decision: "approve", credential_value: credential });

    const poll = (userAgent: string) =>
      api<{ error?: string; credential_value?: string }>(server, "POST", "/v1/credentials/poll", { device_code: issued.json.device_code }, { "user-agent": userAgent });
    const delivered = await poll("agent/1.0");
    expect(delivered.status, delivered.text).toBe(200);
    expect(delivered.json.credential_value).toBe(credential);

    const replayed = await poll("replayer/2.0");
    expect(replayed.status).toBe(400);
    expect(replayed.json).toEqual({ error: "invalid_grant", error_description: expect.any(String) });
    expect(replayed.text).not.toContain(credential);

    // The operator's webhook: credential.replayed, naming the request and where the poll came from.
    const [hit] = await hooks.waitFor(1, 30_000, (h) => h.path === agent.path && parse(h).type === "credential.replayed");
    const requestId = await deliveredRequestId(agent);
    const payload = await expectReplayedHook(agent, hit!, requestId, vaultKey, credential, "replayer/2.0");
    // wrangler dev fills CF-Connecting-IP with the peer's address: this test's loopback.
    expect(payload.caller).toEqual({ ip: "127.0.0.1", user_agent: "replayer/2.0" });

    // A third poll: refused the same, and the operator is not told again.
    const third = await poll("replayer/3.0");
    expect(third.status).toBe(400);
    expect(third.json.error).toBe("invalid_grant");

    const events = await settleAccount(agent, 1);
    expect(hooksOf(agent, "credential.replayed")).toHaveLength(1);
    expect(hooksOf(agent, "credential.delivered").map((h) => parse(h).request.id)).toEqual([payload.request.id]);
    // No webhook of this account ever carried the credential.
    for (const each of hooks.received.filter((h) => h.path === agent.path)) expect(each.body).not.toContain(credential);

    const replays = events.filter((e) => e.type === "replay_detected");
    expect(replays).toHaveLength(1);
    expect(replays[0]).toMatchObject({ request_id: payload.request.id, detail: { ip: payload.caller!.ip, user_agent: "replayer/2.0" } });
    expect(JSON.stringify(events)).not.toContain(credential);

    // The email: one, to the operator, saying where the poll came from, without the credential.
    const email = await waitForEmail(server, (e) => /Replayed/.test(e.headers.subject ?? "") && e.text.includes(vaultKey), 15_000);
    expect(email.headers.to).toContain(agent.operatorEmail);
    expect(email.text).toContain(`Polled from: ${payload.caller!.ip} (replayer/2.0)`);
    expect(email.text).not.toContain(credential);
    const replayEmails = (await sentEmails(server)).filter((e) => /Replayed/.test(e.headers.subject ?? "") && e.text.includes(vaultKey));
    expect(replayEmails).toHaveLength(1);
  });

  it("a replayed auth_req_id on the OAuth token endpoint alerts the operator once too", async () => {
    const agent = await hookedAgent("replayed-ciba");
    const basic = { authorization: `Basic ${Buffer.from(`${encodeURIComponent(agent.agentId)}:${encodeURIComponent(agent.apiKey)}`).toString("base64")}` };
    const vaultKey = uniqueVaultKey("ciba-replayed");
    const started = await api<{ auth_req_id: string }>(
      server, "POST", "/oauth/bc-authorize",
      new URLSearchParams({ login_hint: agent.operatorEmail, binding_message: "Replay 1", description: "CIBA replay", vault_key: vaultKey }),
      basic,
    );
    expect(started.status, started.text).toBe(200);

    const email = await waitForEmail(server, (e) => e.text.includes(vaultKey), 15_000);
    const linkToken = /\/approve#link=([\w.-]+)/.exec(email.text)?.[1];
    expect(linkToken, email.text).toBeDefined();
    const found = await lookup(server, { link_token: linkToken! });
    expect(found.res.status, found.res.text).toBe(200);
    const decided = await decide(server, found.cookie, { approval_token: found.res.json.approval_token, decision: "approve", credential_value: "AKIA-replayed" });
    expect(decided.status, decided.text).toBe(200);

    const token = (userAgent: string) =>
      api<{ access_token?: string; error?: string }>(
        server, "POST", "/oauth/token",
        new URLSearchParams({ grant_type: "urn:openid:params:grant-type:ciba", auth_req_id: started.json.auth_req_id }),
        { ...basic, "user-agent": userAgent },
      );
    const delivered = await token("agent/1.0");
    expect(delivered.status, delivered.text).toBe(200);
    expect(delivered.json.access_token).toBe("AKIA-replayed");
    for (const userAgent of ["replayer/2.0", "replayer/3.0"]) {
      const again = await token(userAgent);
      expect(again.status).toBe(400);
      expect(again.json.error).toBe("invalid_grant");
    }

    const [hit] = await hooks.waitFor(1, 30_000, (h) => h.path === agent.path && parse(h).type === "credential.replayed");
    const requestId = await deliveredRequestId(agent);
    await expectReplayedHook(agent, hit!, requestId, vaultKey, "AKIA-replayed", "replayer/2.0");
    const events = await settleAccount(agent, 1);
    expect(hooksOf(agent, "credential.replayed")).toHaveLength(1);
    expect(events.filter((e) => e.type === "replay_detected")).toHaveLength(1);
  });

  it("a leaked code of a key-bound request that the SDK collected: the replay without the key alerts too", async () => {
    const agent = await hookedAgent("sdk-replayed");
    const ferry = createClient({ baseUrl: server.url, apiKey: agent.apiKey });
    const vaultKey = uniqueVaultKey("sdk-replayed");
    const req = await ferry.credentials.request({ description: "Bound and collected", vaultKey, endToEnd: false });
    // The SDK bound the request to its DPoP key: a poll without a proof is refused and consumes nothing.
    const unproven = await api<{ error?: string }>(server, "POST", "/v1/credentials/poll", { device_code: req.deviceCode });
    expect(unproven.json.error).toBe("invalid_dpop_proof");
    const waiting = ferry.credentials.waitForApproval(req.deviceCode, { timeout: 60_000 });
    await operatorDecides(server, req.userCode!, agent.operatorEmail, { decision: "approve", credential_value: "bound-secret" });
    expect((await waiting).credentialValue).toBe("bound-secret");

    // Whoever else holds the device code has no DPoP key: refused as a finished code, and reported.
    const replayed = await api<{ error?: string }>(server, "POST", "/v1/credentials/poll", { device_code: req.deviceCode }, { "user-agent": "leaked/1.0" });
    expect(replayed.status).toBe(400);
    expect(replayed.json.error).toBe("invalid_grant");
    const [hit] = await hooks.waitFor(1, 30_000, (h) => h.path === agent.path && parse(h).type === "credential.replayed");
    await expectReplayedHook(agent, hit!, await deliveredRequestId(agent), vaultKey, "bound-secret", "leaked/1.0");
  });
});

describe("replay alarm after the request's expiry, against wrangler dev", () => {
  const TTL_SECONDS = 6;
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: "1", ALLOW_HTTP_WEBHOOKS: "true", REQUEST_TTL_SECONDS: String(TTL_SECONDS) } });
  let hooks: Receiver;

  beforeAll(async () => {
    hooks = await startReceiver();
  });
  afterAll(async () => {
    await hooks?.close();
  });

  it("a delivered code polled after its original expiry is expired_token and alerts nobody", async () => {
    const admin = { authorization: `Bearer ${server.adminToken}` };
    const agent = await createAccountAndAgent(server, { agentName: "late-replayer" });
    const patched = await api(server, "PATCH", `/v1/admin/accounts/${agent.accountId}`, { webhook_url: `${hooks.origin}/late` }, admin);
    expect(patched.status, patched.text).toBe(200);
    const issued = await requestCredential(server, agent.apiKey, { description: "Short-lived", vault_key: "short-lived" });
    expect(issued.json.expires_in).toBe(TTL_SECONDS);
    const expiresAt = Date.now() + TTL_SECONDS * 1000;
    await operatorDecides(server, issued.json.user_code, agent.operatorEmail, { decision: "approve", credential_value: "short-secret" });
    expect((await api(server, "POST", "/v1/credentials/poll", { device_code: issued.json.device_code })).status).toBe(200);

    // Real time has to pass for the request to expire (its alarm then erases the tombstone).
    await sleep(Math.max(0, expiresAt - Date.now()) + 2_000);
    const late = await api<{ error?: string }>(server, "POST", "/v1/credentials/poll", { device_code: issued.json.device_code }, { "user-agent": "late/1.0" });
    expect(late.status).toBe(400);
    expect(late.json.error).toBe("expired_token");

    // A later request's webhook and audit event arrive; no replay was reported before them.
    const asked = await requestCredential(server, agent.apiKey, { description: "Later", vault_key: "later" });
    expect(asked.status, asked.text).toBe(200);
    await hooks.waitFor(1, 30_000, (hit) => hit.path === "/late" && parse(hit).type === "credential.requested" && parse(hit).request.vault_key === "later");
    const events = await api<{ events: AuditEvent[] }>(server, "GET", `/v1/admin/accounts/${agent.accountId}/audit`, undefined, admin);
    expect(events.json.events.filter((e) => e.type === "requested")).toHaveLength(2);
    expect(events.json.events.filter((e) => e.type === "replay_detected")).toEqual([]);
    expect(hooks.received.filter((hit) => parse(hit).type === "credential.replayed")).toEqual([]);
  });
});
