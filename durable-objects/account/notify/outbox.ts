/**
 * The account's outbox (README, "Notifications that survive outages"): every notification the
 * account owes someone (webhook events, operator emails, CIBA pings, pushes) rides on the audit row
 * of the event that causes it, written in the same row (./owed.ts), and is sent at once and then by
 * the AccountDO's alarm. An entry is dropped from its row when the receiver acknowledges it (2xx)
 * or when it is final (a 4xx other than 408/429, or retried for longer than RETRY_WINDOW_MS); a
 * final failure is audited as `notification_failed`. Entries outlive the request, the worker
 * invocation, the object's eviction and a restart. This file: what an entry is, and the backoff.
 */

/** `push`: `destination` is a push subscription's id, `body` the payload before encryption (no secret in it). */
export type Channel = "webhook" | "ping" | "email" | "push";

/** An entry as the notifier makes it; its request and agent are its audit row's. */
export interface NewOutboxEntry {
  /** The event id: `Keyferry-Event-Id` and the body's `id`, the same on every attempt. */
  id: string;
  channel: Channel;
  /** The webhook event type (`credential.requested`, …), or `email` / `ping`. */
  type: string;
  /** Webhook or ping URL, or the email recipient. */
  destination: string;
  /** The exact bytes to send: the JSON body, or the MIME message. */
  body: string;
  /** CIBA ping only: the client's notification token, sent as its bearer (CIBA Core §10.2). */
  bearer?: string | null;
}

/** An entry as stored, and the audit row (`seq`) that carries it. */
export interface OutboxEntry extends Required<NewOutboxEntry> {
  seq: number;
  requestId: string | null;
  agentId: string | null;
  createdAt: number;
  attempts: number;
  /** Null while its issuance makes the first attempt (./owed.ts, `withIssuance`). */
  nextAt: number | null;
}

/** What one attempt came to. `retryAfterMs`: the receiver's `Retry-After`, if it gave one. */
export type AttemptOutcome =
  | { reason: "acknowledged"; status: number }
  | { reason: "retry"; status: number | null; retryAfterMs: number | null }
  | { reason: "final"; status: number | null };

export type Settled = { reason: "done" } | { reason: "rescheduled"; nextAt: number } | { reason: "failed"; attempts: number; status: number | null };

/** Receivers are retried for at least this long before an event is abandoned (README, "Notifications that survive outages"). */
export const RETRY_WINDOW_MS = 60 * 60_000;
export const BASE_DELAY_MS = 5_000;
export const MAX_DELAY_MS = 10 * 60_000;
/** A receiver's `Retry-After` is honoured up to this. */
export const MAX_RETRY_AFTER_MS = 60 * 60_000;
/** An attempt in flight holds its row this long: a crash or eviction mid-attempt retries after it. */
export const LEASE_MS = 60_000;
/**
 * How far back the alarm reads the log for entries still owed: an entry is rescheduled only within
 * RETRY_WINDOW_MS of its event, by at most MAX_RETRY_AFTER_MS, and an attempt holds it a lease
 * more; so no entry of an older event is owed while the alarm runs on time (./owed.ts).
 */
export const OWED_SPAN_MS = RETRY_WINDOW_MS + MAX_RETRY_AFTER_MS + 2 * LEASE_MS;

/** `NOTIFY_MAX_RETRY_DELAY_SECONDS` var: the backoff's cap (default 600 s; the soak lowers it to bound its wait). */
export function maxRetryDelayMs(value: string | undefined): number {
  const seconds = Number.parseInt(value ?? "", 10);
  return Number.isFinite(seconds) && seconds >= 1 ? Math.min(seconds * 1000, MAX_DELAY_MS) : MAX_DELAY_MS;
}

/**
 * Exponential backoff with jitter: `BASE · 2^(n−1)`, capped at MAX_DELAY_MS, scaled by a random
 * factor in [0.5, 1.5) so that many receivers failing together do not retry together. A
 * `Retry-After` longer than that is waited for instead (RFC 9110 §10.2.3).
 */
export function retryDelayMs(attempts: number, retryAfterMs: number | null, random: () => number = Math.random, maxDelayMs = MAX_DELAY_MS): number {
  const exponential = Math.min(maxDelayMs, BASE_DELAY_MS * 2 ** Math.max(0, attempts - 1));
  const jittered = Math.round(exponential * (0.5 + random()));
  return Math.max(jittered, Math.min(retryAfterMs ?? 0, MAX_RETRY_AFTER_MS));
}

/** `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3); null when absent or unreadable. */
export function parseRetryAfter(header: string | null, now: number): number | null {
  if (header === null) return null;
  const value = header.trim();
  if (/^\d{1,9}$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

/** Network errors, 408, 429 and 5xx are worth retrying; any other 4xx (and a redirect) is final. */
export function outcomeOf(status: number, retryAfterMs: number | null): AttemptOutcome {
  if (status >= 200 && status < 300) return { reason: "acknowledged", status };
  if (status === 408 || status === 429 || status >= 500) return { reason: "retry", status, retryAfterMs };
  return { reason: "final", status };
}
