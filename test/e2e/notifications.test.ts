// Operator notifications against a real `wrangler dev` (README, "Device flow or push"): the email
// that the send_email binding writes to an .eml file, the signed webhook received by a local HTTP
// server, its retries, push mode, and a dead webhook that must not hurt the agent.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { verifyWebhook } from "../../core/webhook-signature";
import type { AuditEventBody, AuditLogBody } from "../../core/wire";
import { api, createAccountAndAgent } from "./support/dev-server";
import { useNotificationServer } from "./support/notification-server";
import { decide, lookup, pollCredential, pollUntilSettled, requestCredential } from "./support/approval";
import { closedPort, signatureIsValid, waitForEmail } from "./support/receiver";
import { sleep } from "../support/sleep";

const USER_CODE_SHOWN = /\b[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}\b/;
const LINK = /(https?:\/\/[^\s]+\/approve#link=([\w.-]+))/;

interface Hook {
  id: string;
  type: string;
  created_at: string;
  request: {
    id: string;
    agent: { id: string; name: string; email: string | null };
    account_id: string;
    description: string;
    vault_key: string;
    expires_at: string;
    binding_message?: string;
  };
  approval_url: string;
}

/** A vault key unique to one test, so its email is found among the others in the shared log. */
const uniqueVaultKey = (prefix: string) => `${prefix}-${randomBytes(4).toString("hex")}`;

describe("operator notifications against wrangler dev", () => {
  const dev = useNotificationServer();
  const { admin, receiver } = dev;
  const setWebhook = (accountId: string, url: string) => dev.setWebhook(accountId, { webhook_url: url });

  async function audit(accountId: string): Promise<AuditEventBody[]> {
    const res = await api<AuditLogBody>(dev.server, "GET", `/v1/admin/accounts/${accountId}/audit`, undefined, admin());
    expect(res.status, res.text).toBe(200);
    return res.json.events;
  }

  it("a device-flow request emails the operator everything needed to decide, and POSTs a signed webhook", async () => {
    const hooks = await receiver();
    const agent = await createAccountAndAgent(dev.server, { agentName: "billing-bot", agentEmail: "billing-bot@example.com" });
    const secret = await setWebhook(agent.accountId, `${hooks.origin}/hooks/chat`);
    const vaultKey = uniqueVaultKey("stripe-sk");

    const asked = await requestCredential(dev.server, agent.apiKey, { description: "Stripe secret key for nightly billing", vault_key: vaultKey });
    expect(asked.status, asked.text).toBe(200);

    // The email: an .eml file that wrangler dev wrote and named in its log.
    const email = await waitForEmail(dev.server, (e) => e.text.includes(vaultKey), 15_000);
    expect(email.headers.to).toContain(agent.operatorEmail);
    expect(email.headers["content-type"]).toMatch(/^text\/plain; charset=utf-8/i);
    expect(email.text).toContain("billing-bot");
    expect(email.text).toContain(agent.agentId);
    expect(email.text).toContain(agent.accountId);
    expect(email.text).toContain("Stripe secret key for nightly billing");
    expect(email.text).toContain(vaultKey);
    expect(email.text).toContain(asked.json.user_code);
    expect(email.text).toMatch(/Time left:\s+about (9|10) minutes/);
    expect(email.text).toContain("If you did not expect this, ignore it");
    const emailLink = LINK.exec(email.text);
    expect(emailLink, email.text).not.toBeNull();
    expect(emailLink![1]!.startsWith(`${dev.server.url}/approve#link=`)).toBe(true);

    // The webhook: signed over the raw body, checked both independently and with the service's own helper.
    const [hook] = await hooks.waitFor(1, 15_000);
    expect(hook!.method).toBe("POST");
    expect(hook!.path).toBe("/hooks/chat");
    expect(hook!.headers["content-type"]).toMatch(/^application\/json/);
    const signature = hook!.headers["keyferry-signature"];
    expect(signatureIsValid(secret, hook!.body, signature)).toBe(true);
    expect(await verifyWebhook(secret, hook!.body, String(signature))).toBe(true);
    // Negative controls: a changed body or another secret fails the same check.
    expect(signatureIsValid(secret, hook!.body.replace(vaultKey, "other-key"), signature)).toBe(false);
    expect(signatureIsValid(`${secret}x`, hook!.body, signature)).toBe(false);

    const payload = JSON.parse(hook!.body) as Hook;
    expect(hook!.headers["keyferry-event-id"]).toBe(payload.id);
    expect(payload).toEqual({
      id: expect.stringMatching(/^evt_[0-9a-f]{32}$/),
      type: "credential.requested",
      created_at: expect.any(String),
      request: {
        id: expect.stringMatching(/^req_/),
        agent: { id: agent.agentId, name: "billing-bot", email: "billing-bot@example.com" },
        account_id: agent.accountId,
        description: "Stripe secret key for nightly billing",
        vault_key: vaultKey,
        expires_at: expect.any(String),
      },
      approval_url: emailLink![1],
    });
    const expiresAt = Date.parse(payload.request.expires_at);
    expect(expiresAt - Date.now()).toBeGreaterThan(540_000);
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(601_000);

    // The link opens this very request, without the email being asked.
    const found = await lookup(dev.server, { link_token: emailLink![2]! });
    expect(found.res.status, found.res.text).toBe(200);
    expect(found.res.json.request).toMatchObject({ account_id: agent.accountId, vault_key: vaultKey });
    expect((await audit(agent.accountId)).filter((e) => e.type === "notification_failed")).toEqual([]);
  });

  it("retries a webhook answered with 503 once, with the same body and a valid signature", async () => {
    const hooks = await receiver((_hit, n) => (n === 1 ? 503 : 204));
    const agent = await createAccountAndAgent(dev.server);
    const secret = await setWebhook(agent.accountId, `${hooks.origin}/flaky`);
    const vaultKey = uniqueVaultKey("retry");

    const asked = await requestCredential(dev.server, agent.apiKey, { description: "Retried webhook", vault_key: vaultKey });
    expect(asked.status, asked.text).toBe(200);

    const [first, second] = await hooks.waitFor(2, 15_000);
    expect(second!.body).toBe(first!.body);
    expect(JSON.parse(second!.body).request.vault_key).toBe(vaultKey);
    expect(signatureIsValid(secret, second!.body, second!.headers["keyferry-signature"])).toBe(true);
    expect(second!.headers["keyferry-event-id"]).toBe(first!.headers["keyferry-event-id"]);
    // Backed off rather than hammered (the outbox's first delay is 2.5 to 7.5 s).
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(2_000);
    // Delivered on the second try: nothing more comes, and nothing is audited as failed.
    await sleep(6_000);
    expect(hooks.received).toHaveLength(2);
    expect((await audit(agent.accountId)).filter((e) => e.type === "notification_failed")).toEqual([]);
  });

  it('hint "push": no code in the answer or the email; the emailed link approves it', async () => {
    const agent = await createAccountAndAgent(dev.server, { agentName: "push-bot" });
    const vaultKey = uniqueVaultKey("pushed");

    const asked = await requestCredential(dev.server, agent.apiKey, { description: "Pushed request", vault_key: vaultKey, hint: "push" });
    expect(asked.status, asked.text).toBe(200);
    const body = asked.json as unknown as Record<string, unknown>;
    expect(body.user_code).toBeUndefined();
    expect(body.verification_uri).toBeUndefined();
    expect(body.verification_uri_complete).toBeUndefined();
    expect(typeof body.device_code).toBe("string");
    expect(String(body.message)).toMatch(/notified/i);
    expect(String(body.message)).not.toMatch(USER_CODE_SHOWN);

    const email = await waitForEmail(dev.server, (e) => e.text.includes(vaultKey), 15_000);
    expect(email.text).toContain("push-bot");
    expect(email.text).not.toMatch(/^Code:/m);
    expect(email.text).not.toMatch(USER_CODE_SHOWN);
    expect(email.text).toContain("If you did not expect this, ignore it");
    const link = LINK.exec(email.text);
    expect(link, email.text).not.toBeNull();

    const found = await lookup(dev.server, { link_token: link![2]! });
    expect(found.res.status, found.res.text).toBe(200);
    expect(found.res.json.request.user_code ?? null).toBeNull();
    const decided = await decide(dev.server, found.cookie, { approval_token: found.res.json.approval_token, decision: "approve", credential_value: "pushed-value" });
    expect(decided.status, decided.text).toBe(200);
    const delivered = await pollUntilSettled(dev.server, String(body.device_code), 1, 15_000);
    expect(delivered.json).toMatchObject({ credential_value: "pushed-value", vault_key: vaultKey });
  });

  it("an unreachable webhook neither fails nor slows the agent; a refusing one is audited as notification_failed", async () => {
    const agent = await createAccountAndAgent(dev.server);
    await setWebhook(agent.accountId, `http://127.0.0.1:${await closedPort()}/nobody-home`);
    const vaultKey = uniqueVaultKey("dead-hook");

    const started = Date.now();
    const asked = await requestCredential(dev.server, agent.apiKey, { description: "Dead webhook", vault_key: vaultKey });
    const elapsed = Date.now() - started;
    expect(asked.status, asked.text).toBe(200);
    // The outbox sends after the answer: the agent waits for no attempt (the margin is for a loaded machine).
    expect(elapsed).toBeLessThan(3_000);
    expect((await pollCredential(dev.server, asked.json.device_code)).json.error).toBe("authorization_pending");
    // The email still goes out; the webhook stays in the outbox, retried for an hour.
    await waitForEmail(dev.server, (e) => e.text.includes(vaultKey), 15_000);
    expect((await audit(agent.accountId)).filter((e) => e.type === "notification_failed")).toEqual([]);

    // A receiver answering 400 is final at once: one attempt, audited.
    const refusing = await receiver(() => 400);
    await setWebhook(agent.accountId, `${refusing.origin}/refusing`);
    const again = await requestCredential(dev.server, agent.apiKey, { description: "Refused webhook", vault_key: uniqueVaultKey("refused") });
    expect(again.status, again.text).toBe(200);
    let failed: AuditEventBody | undefined;
    const deadline = Date.now() + 20_000;
    while (!failed && Date.now() < deadline) {
      failed = (await audit(agent.accountId)).find((e) => e.type === "notification_failed");
      if (!failed) await sleep(500);
    }
    expect(failed, "no notification_failed event within 20 s").toBeDefined();
    expect(failed!.detail).toMatchObject({ channel: "webhook", event: "credential.requested", attempts: 1, status: 400 });
    expect(refusing.received).toHaveLength(1);
    // The request itself is untouched and still approvable by code.
    const found = await lookup(dev.server, { user_code: asked.json.user_code, email: agent.operatorEmail });
    expect(found.res.status, found.res.text).toBe(200);
  });
});
