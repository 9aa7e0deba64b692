/**
 * The one error renderer (STYLE.md §4). The wire only ever sees `{error, error_description}`
 * (RFC 6749 §5.2 shape) with `Cache-Control: no-store`; internal detail goes to the log.
 */

/** Error codes on the wire: RFC 6749/8628/CIBA codes plus the contract's own. */
export type ErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "invalid_token"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "authorization_pending"
  | "slow_down"
  | "access_denied"
  | "expired_token"
  | "invalid_dpop_proof"
  | "unknown_user_id"
  | "invalid_binding_message"
  | "already_claimed"
  | "already_approved"
  | "passkey_required"
  | "not_found"
  | "method_not_allowed"
  | "too_many_requests"
  | "vault_full"
  | "saved_full"
  | "too_many_subscriptions"
  | "server_error";

/** An error as the wire shows it. */
export interface WireError {
  readonly status: number;
  readonly code: ErrorCode;
  readonly description: string;
  readonly headers?: Record<string, string>;
}

/**
 * Thrown by handlers for an expected failure; rendered by `errorResponse`. `internal` says which
 * check failed, for the log only (as workers-oauth-provider's `createErrorResponse` keeps its
 * internal detail): the wire never sees it, so a caller cannot tell one failed check from another.
 */
export class HttpError extends Error implements WireError {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    readonly description: string,
    readonly headers: Record<string, string> = {},
    readonly internal: string | null = null,
  ) {
    super(`${code}: ${description}`);
  }
}

export const NO_STORE = { "Cache-Control": "no-store", Pragma: "no-cache" } as const;

/** Every JSON answer: never cached, never sniffed into another type. */
export const JSON_HEADERS = { "Content-Type": "application/json; charset=utf-8", "X-Content-Type-Options": "nosniff", ...NO_STORE } as const;

export function errorResponse(error: WireError): Response {
  return new Response(JSON.stringify({ error: error.code, error_description: error.description }), {
    status: error.status,
    headers: { ...JSON_HEADERS, ...error.headers },
  });
}

/** itty-router `catch`: expected errors render as they are (their internal reason logged); anything else is a logged 500. */
export function renderError(error: unknown): Response {
  if (error instanceof HttpError) {
    if (error.internal) console.warn(`${error.status} ${error.code}: ${error.internal}`);
    return errorResponse(error);
  }
  console.error("unhandled error", error instanceof Error ? `${error.name}: ${error.message}` : typeof error);
  return errorResponse(new HttpError(500, "server_error", "The server could not complete the request."));
}

export const badRequest = (description: string) => new HttpError(400, "invalid_request", description);
export const notFound = (description = "Not found.") => new HttpError(404, "not_found", description);

/**
 * Every client-authentication failure (RFC 6749 §5.2): 401 with a `WWW-Authenticate` challenge for
 * the scheme the client tried, Basic when it tried Basic, else Bearer. `internal` names the failed check.
 */
export const invalidClient = (basicAttempted: boolean, internal: string) =>
  new HttpError(
    401,
    "invalid_client",
    "Client authentication failed.",
    { "WWW-Authenticate": basicAttempted ? 'Basic realm="keyferry"' : 'Bearer realm="keyferry"' },
    internal,
  );
