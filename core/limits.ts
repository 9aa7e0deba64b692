/** Numbers every side (worker, approval page, SDK, tests) must agree on; the README states them. The SDK bundles this file (sdk/build.mjs). */
export const MAX_ACTIVE_REQUESTS_PER_ACCOUNT = 5;
export const MAX_FAILED_ATTEMPTS = 5;
/** RFC 8628 §3.5: each slow_down raises the interval by 5 seconds, for good. */
export const SLOW_DOWN_STEP_SECONDS = 5;
/** RFC 8628 §3.2: the polling interval when none is given (the server's default; the SDK's when an answer has none). */
export const DEFAULT_INTERVAL_SECONDS = 5;
export const DEFAULT_TTL_SECONDS = 600;
export const MIN_TTL_SECONDS = 5;

/** `REQUEST_TTL_SECONDS`: default 600, any value from 5 up is honoured (README, "Deploying"). */
export function requestTtlSeconds(configured: string | undefined): number {
  const value = Number.parseInt(configured ?? "", 10);
  return Number.isFinite(value) ? Math.max(MIN_TTL_SECONDS, value) : DEFAULT_TTL_SECONDS;
}
export const MAX_CREDENTIAL_BYTES = 16_384;
export const MAX_CREDENTIAL_JWE_BYTES = 32_768;
export const MAX_DESCRIPTION_LENGTH = 200;
export const VAULT_KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const MAX_VAULT_CIPHERTEXT_BYTES = 65_536;
export const MAX_VAULT_ITEMS_PER_AGENT = 1000;
/** An operator's saved credentials (README, "Saved credentials"). */
export const MAX_SAVED_CREDENTIALS_PER_OPERATOR = 100;
/** Requests one agent may open per minute (429 with Retry-After beyond it), whatever their lifetimes. */
export const MAX_ISSUED_PER_AGENT_PER_MINUTE = 10;
/** CIBA `requested_expiry` is raised to this (or the configured lifetime, when shorter): slots cannot be churned. */
export const MIN_REQUESTED_EXPIRY_SECONDS = 60;
/** How long a DPoP-bound request keeps its delivered answer for its key (`DELIVERY_GRACE_SECONDS`). */
export const DEFAULT_DELIVERY_GRACE_SECONDS = 60;

/** `DELIVERY_GRACE_SECONDS` in ms: a whole number of seconds, 0 for single delivery; the default otherwise. */
export function deliveryGraceMs(configured: string | undefined): number {
  const seconds = /^\d{1,6}$/.test(configured?.trim() ?? "") ? Number(configured) : DEFAULT_DELIVERY_GRACE_SECONDS;
  return seconds * 1000;
}
/**
 * Return-channel sockets open at once on one request; the next is refused with 429. An agent's
 * sockets are bounded with no count of their own: only a pending or approved request accepts one,
 * and each holds one of its account's MAX_ACTIVE_REQUESTS_PER_ACCOUNT slots (so at most 20).
 */
export const MAX_WAITS_PER_REQUEST = 4;
/** The Retry-After of that refusal: a socket ends at the decision or when its agent leaves. */
export const WAIT_RETRY_AFTER_SECONDS = 30;
