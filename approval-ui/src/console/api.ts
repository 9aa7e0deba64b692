/**
 * The console's JSON calls (README, "Console"). Same origin, the session cookie sent by the browser;
 * every change is `application/json`, which no cross-site form can send. Failures come back as values.
 */
export type { ConsoleRequestBody, ConsoleRequestsBody } from "../../../core/wire";

export interface ApiFailure {
  /** HTTP status, or 0 when the server could not be reached or answered nonsense. */
  status: number;
  error: string;
  description: string;
}

export type ApiResult<T> = { ok: true; value: T } | { ok: false; failure: ApiFailure };

export interface Operator {
  operator_id: string;
  email: string;
  name: string | null;
  role: "owner" | "approver";
}

export interface SessionBody {
  operator: Operator;
  account_id: string;
  expires_at: string;
}

export const getJson = <T>(path: string): Promise<ApiResult<T>> => call<T>("GET", path);
export const sendJson = <T>(method: "POST" | "PUT" | "PATCH" | "DELETE", path: string, body: unknown = {}): Promise<ApiResult<T>> => call<T>(method, path, body);

async function call<T>(method: string, path: string, body?: unknown): Promise<ApiResult<T>> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body === undefined ? { Accept: "application/json" } : { Accept: "application/json", "Content-Type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch {
    return { ok: false, failure: { status: 0, error: "network_error", description: "The server could not be reached. Check your connection and try again." } };
  }
  if (response.status === 204) return { ok: true, value: undefined as T };
  let parsed: unknown;
  try {
    parsed = await response.json();
  } catch {
    return { ok: false, failure: { status: response.status, error: "bad_response", description: "The server answered something unexpected." } };
  }
  if (response.ok) return { ok: true, value: parsed as T };
  const error = isRecord(parsed) && typeof parsed.error === "string" ? parsed.error : "bad_response";
  const description = isRecord(parsed) && typeof parsed.error_description === "string" ? parsed.error_description : "The request failed.";
  return { ok: false, failure: { status: response.status, error, description } };
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null;
