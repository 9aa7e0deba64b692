/**
 * Every new request reaches its operator at once (DESIGN.md, anti-phishing): an email through the
 * `send_email` binding and, when the account has one, a signed webhook. Both run after the agent
 * has its answer and fail soft: a failure is logged and audited, and the code path still works.
 */
import { EmailMessage } from "cloudflare:email";
import { signWebhook } from "../../core/webhook-signature";
import type { IssuedRequest } from "../issue-request";
import { accountStub } from "../stubs";
import { signToken } from "../tokens";
import { notificationMime } from "./email-message";
import { postWithRetry } from "../../core/post-with-retry";

/** A signed, single-use link to the approval page, bound to this request and expiring with it. */
export async function approvalUrl(env: Env, origin: string, issued: IssuedRequest): Promise<string> {
  const token = await signToken(env, "approval_link", { uc: issued.userCode, rid: issued.requestId }, issued.expiresAt);
  return `${origin}/approve?link=${token}`;
}

export function webhookBody(issued: IssuedRequest, url: string): string {
  const { details } = issued;
  return JSON.stringify({
    type: "credential.requested",
    request: {
      agent: details.agent,
      account_id: details.accountId,
      description: details.description,
      vault_key: details.vaultKey,
      expires_at: new Date(issued.expiresAt).toISOString(),
      ...(details.bindingMessage ? { binding_message: details.bindingMessage } : {}),
    },
    approval_url: url,
  });
}

async function sendEmail(env: Env, issued: IssuedRequest, url: string): Promise<void> {
  const from = env.EMAIL_FROM || "keyferry@keyferry.local";
  const raw = notificationMime(from, issued.operatorEmail, {
    details: issued.details,
    expiresAt: issued.expiresAt,
    approvalUrl: url,
    userCode: issued.details.protocol === "device" ? issued.userCode : null,
  });
  await env.EMAIL.send(new EmailMessage(from, issued.operatorEmail, raw));
}

async function sendWebhook(issued: IssuedRequest, url: string): Promise<{ ok: boolean; attempts: number; status: number | null }> {
  const webhook = issued.webhook!;
  const body = webhookBody(issued, url);
  return postWithRetry(webhook.url, async () => ({
    headers: {
      "Content-Type": "application/json",
      "User-Agent": "Keyferry-Webhook/1",
      "Keyferry-Signature": await signWebhook(webhook.secret, body, Math.floor(Date.now() / 1000)),
    },
    body,
  }));
}

export async function notifyOperator(env: Env, origin: string, issued: IssuedRequest): Promise<void> {
  const url = await approvalUrl(env, origin, issued);
  const account = accountStub(env, issued.details.accountId);
  const failed = (channel: string, detail: Record<string, unknown>) =>
    account
      .recordRequestEvent({ type: "notification_failed", requestId: issued.requestId, agentId: issued.agent.id, detail: { channel, ...detail } })
      .catch(() => undefined);

  const email = sendEmail(env, issued, url).catch(async (error: unknown) => {
    console.error("notification email failed", issued.requestId, error instanceof Error ? error.message : String(error));
    await failed("email", {});
  });
  const webhook = issued.webhook
    ? sendWebhook(issued, url).then(async (result) => {
        if (!result.ok) {
          console.error("webhook delivery failed", issued.requestId, result.status);
          await failed("webhook", { attempts: result.attempts, status: result.status });
        }
      })
    : Promise.resolve();
  await Promise.all([email, webhook]);
}
