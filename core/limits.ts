/** Numbers every side (worker, approval page, SDK, tests) must agree on; the README states them. */
export const MAX_ACTIVE_REQUESTS_PER_ACCOUNT = 5;
export const MAX_FAILED_ATTEMPTS = 5;
/** RFC 8628 §3.5: each slow_down raises the interval by 5 seconds, for good. */
export const SLOW_DOWN_STEP_SECONDS = 5;
export const DEFAULT_INTERVAL_SECONDS = 5;
export const DEFAULT_TTL_SECONDS = 600;
export const MIN_TTL_SECONDS = 5;
export const MAX_CREDENTIAL_BYTES = 16_384;
export const MAX_CREDENTIAL_JWE_BYTES = 32_768;
export const MAX_DESCRIPTION_LENGTH = 200;
export const VAULT_KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const MAX_VAULT_CIPHERTEXT_BYTES = 65_536;
export const MAX_VAULT_ITEMS_PER_AGENT = 1000;
