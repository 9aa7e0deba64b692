// Typed helpers for calling the JSON API of a running dev server.
// Type-only imports only (with their extension): bench/ runs this file under Node's type stripping.
import type { AccountBody, ErrorBody, AgentCreatedBody, ApprovalRequestBody, DecideAnswerBody, LookupAnswerBody, LookupBody } from "../../../core/wire.ts";

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

// ---- Accounts, agents and the operator's decision: shared by the e2e tests and bench/ ----------

export interface AccountAndAgent {
  accountId: string;
  agentId: string;
  apiKey: string;
  operatorEmail: string;
}

/** Creates an account and one agent through the admin API; the agent's OAuth client is agentId/apiKey. */
export async function createAccountAndAgent(
  server: { url: string; adminToken: string },
  opts: { operatorEmail?: string; accountName?: string; agentName?: string; agentEmail?: string } = {},
): Promise<AccountAndAgent> {
  const operatorEmail = opts.operatorEmail ?? `operator-${crypto.randomUUID().slice(0, 8)}@example.com`;
  const admin = { authorization: `Bearer ${server.adminToken}` };
  const accountBody = { name: opts.accountName ?? "E2E account", operator_email: operatorEmail };
  const account = await api<AccountBody>(server, "POST", "/v1/admin/accounts", accountBody, admin);
  if (account.status !== 201 || typeof account.json.account_id !== "string") {
    throw new Error(`POST /v1/admin/accounts: expected 201, got ${account.status} ${account.text}`);
  }
  const agentBody: Record<string, string> = { name: opts.agentName ?? "e2e-agent" };
  if (opts.agentEmail !== undefined) agentBody.email = opts.agentEmail;
  const path = `/v1/admin/accounts/${account.json.account_id}/agents`;
  const agent = await api<AgentCreatedBody>(server, "POST", path, agentBody, admin);
  if (agent.status !== 201 || typeof agent.json.agent_id !== "string" || typeof agent.json.api_key !== "string") {
    throw new Error(`POST ${path}: expected 201, got ${agent.status} ${agent.text}`);
  }
  return { accountId: account.json.account_id, agentId: agent.json.agent_id, apiKey: agent.json.api_key, operatorEmail };
}

export const APPROVAL_COOKIE = "__Host-kf_approval";

/** What the look-up shows the operator. */
export type LookedUpRequest = ApprovalRequestBody;

export interface Lookup {
  res: ApiResponse<LookupAnswerBody>;
  /** The `__Host-kf_approval=…` pair the look-up set (send it back on decide), if any. */
  cookie: string | undefined;
}

/** `POST /v1/approvals/lookup` as the operator's browser; `headers` e.g. a `CF-Connecting-IP`. */
export async function lookup(
  server: { url: string },
  body: LookupBody,
  cookie?: string,
  headers: Record<string, string> = {},
): Promise<Lookup> {
  const res = await api<LookupAnswerBody>(
    server, "POST", "/v1/approvals/lookup", body, { ...headers, ...(cookie ? { cookie } : {}) },
  );
  return { res, cookie: cookieFrom(res, APPROVAL_COOKIE) ?? cookie };
}

export function decide(server: { url: string }, cookie: string | undefined, body: Record<string, unknown>) {
  return api<Partial<DecideAnswerBody & ErrorBody>>(server, "POST", "/v1/approvals/decide", body, cookie ? { cookie } : {});
}

export type OperatorDecision =
  | { decision: "deny" }
  | { decision: "approve"; credential_value: string }
  | { decision: "approve"; credential_jwe: string };

/** Looks the code up as the operator and decides; throws with the server's answer if either step fails. */
export async function operatorDecides(
  server: { url: string },
  userCode: string,
  email: string,
  decision: OperatorDecision,
  lookupHeaders: Record<string, string> = {},
): Promise<void> {
  const found = await lookup(server, { user_code: userCode, email }, undefined, lookupHeaders);
  if (found.res.status !== 200) throw new Error(`lookup: expected 200, got ${found.res.status} ${found.res.text}`);
  const decided = await decide(server, found.cookie, { approval_token: found.res.json.approval_token, ...decision });
  if (decided.status !== 200) throw new Error(`decide: expected 200, got ${decided.status} ${decided.text}`);
}
