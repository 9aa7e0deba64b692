/**
 * One Web Push message to one browser subscription (RFC 8030 §5): the body encrypted to the
 * subscription's keys as `aes128gcm` (RFC 8291, by @block65/webcrypto-web-push, padded to a
 * constant size so its length tells nothing), VAPID-authenticated (RFC 8292), `Urgency: high` and a
 * `TTL` no longer than the request has left, so a phone that comes online late is not shown a
 * request that is already over. Its `Topic` (§5.4) is the outbox event's id, the same at every
 * attempt: a retry after a lost answer replaces the stored message instead of adding a second.
 */
import { encryptNotification } from "@block65/webcrypto-web-push";
import { vapidAuthorization, type Vapid } from "./vapid";

export interface PushSubscriptionRecord {
  endpoint: string;
  /** The browser's P-256 ECDH public key (base64url, uncompressed) and 16-byte auth secret (base64url). */
  p256dh: string;
  auth: string;
}

/** What a push says: who asks and for what, where to decide; never a secret, code or token. */
export interface PushPayload {
  type: "credential.requested";
  request_id: string;
  agent: { name: string };
  description: string;
  vault_key: string;
  expires_at: string;
  url: string;
}

export interface PushRequest {
  url: string;
  init: RequestInit & { headers: Record<string, string>; body: Uint8Array };
}

/** RFC 8030 §5.4: at most 32 characters of the URL-safe base64 alphabet; an `evt_` id's 32 hex digits. */
export const pushTopic = (eventId: string): string => eventId.replace(/^evt_/, "").replace(/[^A-Za-z0-9_-]/g, "").slice(0, 32);

export async function pushRequest(subscription: PushSubscriptionRecord, payload: PushPayload, vapid: Vapid, nowMs: number, expiresAtMs: number, eventId: string): Promise<PushRequest> {
  const ttlSeconds = Math.max(0, Math.floor((expiresAtMs - nowMs) / 1000));
  const body = await encryptNotification(
    { endpoint: subscription.endpoint, expirationTime: null, keys: { p256dh: subscription.p256dh, auth: subscription.auth } },
    new TextEncoder().encode(JSON.stringify(payload)),
  );
  return {
    url: subscription.endpoint,
    init: {
      method: "POST",
      headers: {
        Authorization: await vapidAuthorization(vapid, subscription.endpoint, nowMs),
        TTL: String(ttlSeconds),
        Urgency: "high",
        Topic: pushTopic(eventId),
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
      },
      body,
    },
  };
}
