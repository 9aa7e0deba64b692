import { KeyferryError } from "./errors";

/** The subset of `fetch` the SDK uses; inject one to run behind a proxy or in tests. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface HttpContext {
  readonly baseUrl: string;
  readonly apiKey: string | undefined;
  readonly fetch: FetchLike;
}

export interface ApiCall {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  body?: unknown;
  /** Send `Authorization: Bearer <api_key>` (every call but the device-code poll). */
  auth: boolean;
  signal?: AbortSignal | undefined;
  /** Extra headers, e.g. a `DPoP` proof. */
  headers?: Record<string, string> | undefined;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  /** Parsed JSON, or `undefined` for an empty body (204). */
  body: unknown;
}

/**
 * One HTTP exchange with the Keyferry API. Transport failures become `NETWORK` (or `ABORTED` when
 * the caller's signal fired); a body that is not JSON becomes `INVALID_RESPONSE` (`SERVER_ERROR`
 * for a 5xx). HTTP error statuses are returned, not thrown: each caller knows which ones it expects.
 */
export async function callApi(ctx: HttpContext, call: ApiCall): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...call.headers, accept: "application/json" };
  if (call.auth) {
    if (ctx.apiKey === undefined) throw new KeyferryError("INVALID_ARGUMENT", "an apiKey is required for this call");
    headers.authorization = `Bearer ${ctx.apiKey}`;
  }
  // Never follow a redirect (the API has none); "manual" because workerd rejects "error".
  const init: RequestInit = { method: call.method, headers, redirect: "manual" };
  if (call.body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(call.body);
  }
  if (call.signal) init.signal = call.signal;

  let response: Response;
  try {
    response = await ctx.fetch(ctx.baseUrl + call.path, init);
  } catch (cause) {
    if (call.signal?.aborted) throw abortedError(call.signal);
    throw new KeyferryError("NETWORK", `could not reach the Keyferry server at ${ctx.baseUrl}`, { cause });
  }

  let text: string;
  try {
    text = await response.text();
  } catch (cause) {
    if (call.signal?.aborted) throw abortedError(call.signal);
    throw new KeyferryError("NETWORK", "the connection failed while reading the server's answer", { cause });
  }
  if (text === "") return { status: response.status, headers: response.headers, body: undefined };
  try {
    return { status: response.status, headers: response.headers, body: JSON.parse(text) };
  } catch {
    const code = response.status >= 500 ? "SERVER_ERROR" : "INVALID_RESPONSE";
    throw new KeyferryError(code, `the server answered HTTP ${response.status} with a body that is not JSON`, {
      status: response.status,
    });
  }
}

/** The error for an aborted wait or call. */
export function abortedError(signal: AbortSignal): KeyferryError {
  return new KeyferryError("ABORTED", "the operation was aborted", { cause: signal.reason });
}

/** `{error, error_description}` of an error response, when the body has that shape. */
export function readServerError(body: unknown): { error: string; description: string | undefined } | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const { error, error_description: description } = body as Record<string, unknown>;
  if (typeof error !== "string") return undefined;
  return { error, description: typeof description === "string" ? printable(description) : undefined };
}

/**
 * Maps an unexpected error response to a `KeyferryError`. The server's `error_description` is shown
 * (cut short and stripped of control characters: it is text from the network).
 */
export function errorFromResponse(response: ApiResponse, action: string): KeyferryError {
  const server = readServerError(response.body);
  const detail = server ? `${server.error}${server.description ? `: ${server.description}` : ""}` : `HTTP ${response.status}`;
  const options = {
    status: response.status,
    ...(server ? { serverError: server.error } : {}),
    ...retryAfterOption(response.headers),
  };
  const message = `${action} failed (${detail})`;
  if (response.status === 401) return new KeyferryError("UNAUTHORIZED", `${action} failed: the API key was refused (${detail})`, options);
  if (response.status === 429) return new KeyferryError("RATE_LIMITED", message, options);
  if (response.status === 404) return new KeyferryError("NOT_FOUND", message, options);
  if (server?.error === "vault_full") return new KeyferryError("VAULT_FULL", message, options);
  if (response.status === 400 && server?.error === "invalid_request") return new KeyferryError("INVALID_REQUEST", message, options);
  if (response.status >= 500) return new KeyferryError("SERVER_ERROR", message, options);
  if (!server) return new KeyferryError("INVALID_RESPONSE", message, options);
  return new KeyferryError("SERVER_ERROR", message, options);
}

function retryAfterOption(headers: Headers): { retryAfter?: number } {
  const value = headers.get("retry-after");
  if (value === null || !/^\d+$/.test(value.trim())) return {};
  return { retryAfter: Number(value.trim()) };
}

function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, " ");
  return clean.length > 300 ? `${clean.slice(0, 300)}…` : clean;
}
