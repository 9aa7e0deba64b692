/**
 * One attempt at one outbox entry (durable-objects/account/notify/outbox.ts): a signed webhook POST, a CIBA ping
 * (CIBA Core §10.2), or an email through the `send_email` binding. Never throws: the outcome says
 * whether the entry is acknowledged, retried or final. Secrets (the webhook secret, the ping bearer)
 * go only into headers, never into a log line.
 */
import { EmailMessage } from "cloudflare:email";
import { signWebhook } from "../../../core/webhook-signature";
import { outcomeOf, parseRetryAfter, type AttemptOutcome, type OutboxEntry } from "./outbox";
import type { PushSubscriptions } from "../push-subscriptions";
import { vapidFrom } from "./vapid";
import { pushRequest, type PushPayload } from "./web-push";

/** A receiver that holds the connection longer than this counts as a network error (retried). */
const ATTEMPT_TIMEOUT_MS = 15_000;

export interface SendContext {
  env: Env;
  /** The account's current webhook; an event for a URL since replaced or removed is not sent. */
  webhook: { url: string; secret: string } | null;
  now: () => number;
  /** The account's push subscriptions: a push row names one by id; a gone one (404/410) is forgotten. */
  push: Pick<PushSubscriptions, "byId" | "forget">;
}

export async function attempt(entry: OutboxEntry, context: SendContext): Promise<AttemptOutcome> {
  switch (entry.channel) {
    case "email":
      return sendEmail(entry, context.env);
    case "ping":
      return post(entry.destination, entry.body, { Authorization: `Bearer ${entry.bearer ?? ""}` }, context.now);
    case "push":
      return sendPush(entry, context);
    case "webhook": {
      const webhook = context.webhook;
      if (!webhook || webhook.url !== entry.destination) return { reason: "final", status: null };
      const signature = await signWebhook(webhook.secret, entry.body, Math.floor(context.now() / 1000));
      return post(entry.destination, entry.body, { "Keyferry-Event-Id": entry.id, "Keyferry-Signature": signature }, context.now);
    }
  }
}

/**
 * RFC 8030 §5 through the subscription's push service. A subscription removed since is final; a
 * 404 or 410 means the browser unsubscribed (§7.3), so the subscription goes too.
 */
async function sendPush(entry: OutboxEntry, context: SendContext): Promise<AttemptOutcome> {
  const subscription = context.push.byId(entry.destination);
  const vapid = await vapidFrom(context.env);
  if (!subscription || !vapid) return { reason: "final", status: null };
  const payload = JSON.parse(entry.body) as PushPayload;
  const { url, init } = await pushRequest(subscription, payload, vapid, context.now(), Date.parse(payload.expires_at), entry.id);
  if (init.headers.TTL === "0") return { reason: "final", status: null };
  const outcome = await post(url, init.body, init.headers, context.now, "application/octet-stream");
  if (outcome.status === 404 || outcome.status === 410) context.push.forget(entry.destination);
  return outcome;
}

async function post(url: string, body: string | Uint8Array, headers: Record<string, string>, now: () => number, contentType = "application/json"): Promise<AttemptOutcome> {
  // A timer of our own, cleared at once: a pending AbortSignal.timeout would keep the object busy.
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), ATTEMPT_TIMEOUT_MS);
  try {
    const response = await fetch(url, {
      method: "POST",
      // A redirect is final (3xx): following it could carry the signature somewhere unvetted.
      redirect: "manual",
      headers: { "Content-Type": contentType, "User-Agent": "Keyferry-Webhook/1", ...headers },
      body,
      signal: abort.signal,
    });
    await response.body?.cancel();
    return outcomeOf(response.status, parseRetryAfter(response.headers.get("Retry-After"), now()));
  } catch {
    return { reason: "retry", status: null, retryAfterMs: null };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The binding's errors are configuration errors (an unverified destination, a sender outside the
 * zone), so a failed email is final at once and audited: notifications fail soft, as before.
 */
async function sendEmail(entry: OutboxEntry, env: Env): Promise<AttemptOutcome> {
  const from = env.EMAIL_FROM || "keyferry@keyferry.local";
  try {
    await env.EMAIL.send(new EmailMessage(from, entry.destination, entry.body));
    return { reason: "acknowledged", status: 250 };
  } catch (error) {
    console.error("notification email failed", entry.requestId, error instanceof Error ? error.message : String(error));
    return { reason: "final", status: null };
  }
}
