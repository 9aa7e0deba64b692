import { exports } from "cloudflare:workers";
import { CompactEncrypt, importJWK, type JWK } from "jose";
import type { AgentCreatedBody, AccountBody, AuditEventBody, AuditLogBody, DecideAnswerBody, DeviceAuthorizationBody, ErrorBody, LookupAnswerBody } from "../../../core/wire";
import { sleep } from "../../support/sleep";

export const ADMIN_TOKEN = "test-admin-token-of-at-least-32-characters";

export interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

/**
 * A JSON answer as a test reads it: the success body's fields, or the RFC 6749 §5.2 error's. The
 * status says which; a test asserts it before it trusts either.
 */
export type Answer<T = object> = T & Partial<ErrorBody>;

/** `POST /v1/credentials/poll`: the credential (a value, or a JWE in end-to-end mode) once approved. */
export type PollAnswer = Answer<{ vault_key?: string; description?: string; credential_value?: string; credential_jwe?: string }>;

/**
 * Calls the worker's own fetch handler inside workerd, as an outside client would. `T` is what the
 * test expects the body to be (parsed JSON, or the text when it is not JSON); unknown until it says.
 */
export async function call<T = unknown>(
  method: string,
  path: string,
  init: { json?: unknown; form?: Record<string, string | undefined>; headers?: Record<string, string | undefined>; body?: BodyInit } = {},
): Promise<ApiResponse<T>> {
  const headers = new Headers(defined(init.headers ?? {}));
  // A fresh address per call unless a test names one, so the per-IP look-up limit only bites where tested.
  if (!headers.has("CF-Connecting-IP")) headers.set("CF-Connecting-IP", `10.${randomOctet()}.${randomOctet()}.${randomOctet()}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(init.json);
  } else if (init.form) {
    headers.set("Content-Type", "application/x-www-form-urlencoded");
    body = new URLSearchParams(defined(init.form)).toString();
  }
  const response = await exports.default.fetch(new Request(`https://keyferry.test${path}`, { method, headers, body }));
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: the caller asserts on it as text
  }
  return { status: response.status, headers: response.headers, body: parsed as T };
}

export const admin = { Authorization: `Bearer ${ADMIN_TOKEN}` };
export const bearer = (apiKey: string) => ({ Authorization: `Bearer ${apiKey}` });

export async function newAgent(operatorEmail = "operator@example.com") {
  const account = await call<AccountBody>("POST", "/v1/admin/accounts", { headers: admin, json: { name: "Acme", operator_email: operatorEmail } });
  const agent = await call<AgentCreatedBody>("POST", `/v1/admin/accounts/${account.body.account_id}/agents`, {
    headers: admin,
    json: { name: "build-bot", email: "bot@example.com" },
  });
  return { accountId: account.body.account_id, agentId: agent.body.agent_id, apiKey: agent.body.api_key, operatorEmail };
}

export async function requestCredential(apiKey: string, body: Record<string, unknown> = {}) {
  return call<Answer<DeviceAuthorizationBody>>("POST", "/v1/credentials/request", {
    headers: bearer(apiKey),
    json: { description: "Stripe secret key", vault_key: "stripe-sk", ...body },
  });
}

/** Looks a request up as the operator's browser would; returns the cookie it was given. */
export async function lookupAs(userCode: string, email: string, cookie?: string) {
  const response = await call<Answer<LookupAnswerBody>>("POST", "/v1/approvals/lookup", {
    headers: cookie ? { Cookie: cookie } : {},
    json: { user_code: userCode, email },
  });
  const setCookie = response.headers.get("Set-Cookie");
  return { ...response, cookie: setCookie ? setCookie.split(";")[0]! : cookie };
}

export async function approve(userCode: string, email: string, value: string) {
  const looked = await lookupAs(userCode, email);
  const decided = await call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", {
    headers: { Cookie: looked.cookie! },
    json: { approval_token: looked.body.approval_token, decision: "approve", credential_value: value },
  });
  return { looked, decided };
}

export const poll = (deviceCode: string) => call<PollAnswer>("POST", "/v1/credentials/poll", { json: { device_code: deviceCode } });

/** Reads the account's audit log until `predicate` holds (audit writes finish in the background). */
export async function auditUntil(accountId: string, predicate: (events: AuditEventBody[]) => boolean): Promise<AuditEventBody[]> {
  for (let i = 0; i < 50; i++) {
    const audit = await call<AuditLogBody>("GET", `/v1/admin/accounts/${accountId}/audit`, { headers: admin });
    if (predicate(audit.body.events)) return audit.body.events;
    await sleep(20);
  }
  throw new Error("the audit log never showed the expected events");
}

export const normalized = (userCode: string) => userCode.replace("-", "");

function randomOctet(): number {
  return crypto.getRandomValues(new Uint8Array(1))[0]!;
}

const defined = (record: Record<string, string | undefined>): Record<string, string> =>
  Object.fromEntries(Object.entries(record).filter((entry): entry is [string, string] => entry[1] !== undefined));

/** What the approval page does in end-to-end mode: encrypt the value in the browser to the request's key. */
export async function encryptForRequest(encryptionKey: JWK, value: string): Promise<string> {
  const alg = "ECDH-ES+A256KW";
  return new CompactEncrypt(new TextEncoder().encode(value)).setProtectedHeader({ alg, enc: "A256GCM" }).encrypt(await importJWK(encryptionKey, alg));
}
