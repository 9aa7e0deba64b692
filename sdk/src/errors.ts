/**
 * Every failure the SDK reports is a `KeyferryError` with a stable `code` that callers can `switch`
 * on (as in panva/oauth4webapi). Messages never contain a secret: no API key, device code, master
 * seed, credential value or ciphertext.
 */
export type KeyferryErrorCode =
  /** The operator denied the request, or 5 approval attempts failed (RFC 8628 §3.5 `access_denied`). */
  | "ACCESS_DENIED"
  /** The request expired before it was approved (RFC 8628 §3.5 `expired_token`). */
  | "EXPIRED_TOKEN"
  /** The device code is unknown, malformed or was already delivered (`invalid_grant`). */
  | "INVALID_GRANT"
  /** `waitForApproval` reached its `timeout`. The request may still be approved later. */
  | "TIMEOUT"
  /** The caller's `AbortSignal` fired. */
  | "ABORTED"
  /** The server could not be reached (DNS, connection refused, TLS, reset). */
  | "NETWORK"
  /** The server answered something the contract does not allow (wrong shape, missing field, non-JSON). */
  | "INVALID_RESPONSE"
  /** The API key was refused (401 `invalid_client` / `invalid_token`). */
  | "UNAUTHORIZED"
  /** Too many active requests or requests too fast (429); see `retryAfter`. */
  | "RATE_LIMITED"
  /** The server refused the request body (400 `invalid_request`). */
  | "INVALID_REQUEST"
  /** The vault item does not exist (404). */
  | "NOT_FOUND"
  /** The agent's vault holds the maximum number of items (409 `vault_full`). */
  | "VAULT_FULL"
  /** The server failed (5xx) or answered an error this SDK does not know. */
  | "SERVER_ERROR"
  /** A ciphertext failed authentication: it was altered, or the master seed / private key differs. */
  | "DECRYPTION_FAILED"
  /** A vault ciphertext is authentic but was made for another vault key name (moved by the server). */
  | "VAULT_KEY_MISMATCH"
  /** The client has no private key for this device code (another client or process made the request). */
  | "MISSING_KEY"
  /** The server refused this client's DPoP proof for a key-bound request (RFC 9449); nothing was consumed. */
  | "INVALID_DPOP_PROOF"
  /** A caller-supplied argument or option is invalid; nothing was sent. */
  | "INVALID_ARGUMENT";

export interface KeyferryErrorOptions {
  /** HTTP status of the response that caused the error, when there was one. */
  status?: number;
  /** The server's `error` code, when there was one (e.g. `slow_down`, `vault_full`). */
  serverError?: string;
  /** Seconds from a `Retry-After` header, when there was one. */
  retryAfter?: number;
  cause?: unknown;
}

export class KeyferryError extends Error {
  override readonly name = "KeyferryError";
  readonly code: KeyferryErrorCode;
  readonly status: number | undefined;
  readonly serverError: string | undefined;
  readonly retryAfter: number | undefined;

  constructor(code: KeyferryErrorCode, message: string, options: KeyferryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status;
    this.serverError = options.serverError;
    this.retryAfter = options.retryAfter;
  }
}

export function isKeyferryError(value: unknown, code?: KeyferryErrorCode): value is KeyferryError {
  return value instanceof KeyferryError && (code === undefined || value.code === code);
}
