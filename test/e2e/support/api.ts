// Typed helpers for calling the JSON API of a running dev server.

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  /** The parsed body, or `{}` when it was empty or not JSON (then see `text`). */
  json: T;
  text: string;
}

/**
 * Calls `method path` on the server. A plain object body is sent as JSON, a URLSearchParams body
 * form-encoded (the OAuth endpoints). Never throws on an HTTP error status.
 */
export async function api<T = Record<string, unknown>>(
  server: { url: string },
  method: string,
  path: string,
  body?: Record<string, unknown> | URLSearchParams,
  headers: Record<string, string> = {},
): Promise<ApiResponse<T>> {
  const init: RequestInit = { method, headers: { ...headers }, redirect: "manual", signal: AbortSignal.timeout(30_000) };
  if (body instanceof URLSearchParams) {
    init.body = body;
    init.headers = { "content-type": "application/x-www-form-urlencoded", ...headers };
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { "content-type": "application/json", ...headers };
  }
  const res = await fetch(new URL(path, server.url), init);
  const text = await res.text();
  let json = {} as T;
  try {
    if (text) json = JSON.parse(text) as T;
  } catch {
    // Not JSON: callers assert on `text` or `status`.
  }
  return { status: res.status, headers: res.headers, json, text };
}

/** The `name=value` pair of a cookie the response set, ready for a `Cookie` header. */
export function cookieFrom(res: { headers: Headers }, name: string): string | undefined {
  for (const line of res.headers.getSetCookie()) {
    const pair = line.split(";", 1)[0]?.trim() ?? "";
    if (pair.startsWith(`${name}=`)) return pair;
  }
  return undefined;
}
