/**
 * The console session (README, "Operators and passkeys"): the cookie `__Host-kf_console` holds
 * `kfc1.<account>.<operator>.<expiry ms>.<session id>.<tag>` (./signed-fields.ts). HttpOnly, Secure,
 * SameSite=Strict, Path=/ and `__Host-` (RFC 6265bis §4.1.3.2), 12 h at most. The edge checks the tag
 * and the expiry, so a forged or expired cookie touches no object; the account object then checks
 * that the session (kept only as a hash of its id) is still live, so removing an operator or signing
 * out ends it at once.
 */
import type { Operator } from "../../durable-objects/account/operator-types";
import { HttpError } from "../errors";
import { randomToken, sha256 } from "../hashing";
import { isAccountId, isOperatorId } from "../ids";
import { accountStub } from "../stubs";
import { relyingParty } from "./relying-party";
import { signFields, verifyFields } from "./signed-fields";

export const CONSOLE_COOKIE = "__Host-kf_console";
export const CONSOLE_SESSION_MS = 12 * 60 * 60 * 1000;

export interface ConsoleSession {
  accountId: string;
  operator: Operator;
  /** SHA-256 of the session id: what the AccountDO keeps. */
  sessionHash: string;
  /** Unix ms. */
  expiresAt: number;
}

/** A new session's cookie and what the AccountDO stores of it. */
export async function newConsoleSession(env: Env, accountId: string, operatorId: string, now = Date.now()) {
  const expiresAt = now + CONSOLE_SESSION_MS;
  const sessionId = randomToken(32);
  const value = await signFields(env, "console_session", [accountId, operatorId, String(expiresAt), sessionId]);
  return {
    session: { sessionHash: await sha256(sessionId), expiresAt },
    setCookie: `${CONSOLE_COOKIE}=${value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=${CONSOLE_SESSION_MS / 1000}`,
  };
}

export const clearConsoleCookie = `${CONSOLE_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0`;

const noSession = (internal: string) =>
  new HttpError(401, "invalid_token", "Sign in to the console with your passkey.", {}, `console session: ${internal}`);

/** The cookie's fields if it is ours and unexpired; no object is touched. */
export async function consoleCookie(request: Request, env: Env, now = Date.now()): Promise<{ accountId: string; operatorId: string; sessionHash: string } | null> {
  let value: string | null = null;
  for (const part of (request.headers.get("Cookie") ?? "").split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === CONSOLE_COOKIE) value = rest.join("=");
  }
  const fields = value ? await verifyFields(env, "console_session", value, 4) : null;
  if (!fields) return null;
  const [accountId, operatorId, expiry, sessionId] = fields as [string, string, string, string];
  if (!isAccountId(accountId) || !isOperatorId(operatorId) || !(Number(expiry) > now)) return null;
  return { accountId, operatorId, sessionHash: await sha256(sessionId) };
}

/** The signed-in operator, or 401 `invalid_token`. For every `/v1/console/*` route. */
export async function requireConsoleSession(request: Request, env: Env): Promise<ConsoleSession> {
  const cookie = await consoleCookie(request, env);
  if (!cookie) throw noSession("missing, forged or expired cookie");
  const live = await accountStub(env, cookie.accountId).consoleSession(cookie.sessionHash);
  if (live.reason !== "ok" || live.operator.operatorId !== cookie.operatorId) throw noSession("ended in the account object");
  return { accountId: cookie.accountId, operator: live.operator, sessionHash: cookie.sessionHash, expiresAt: live.expiresAt };
}

/**
 * Every state-changing console call: a JSON body (a form post from another site cannot send one
 * without a CORS preflight) and an `Origin` naming this service (Fetch §3.1; SameSite=Strict already
 * keeps the cookie off cross-site requests: this is the second lock).
 */
export function requireSameOriginJson(request: Request, env: Env): void {
  const type = (request.headers.get("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json") throw new HttpError(415, "invalid_request", "The body must be application/json.");
  requireSameOrigin(request, env);
}

/** The `Origin` half alone, for a state change without a body (DELETE). */
export function requireSameOrigin(request: Request, env: Env): void {
  if (request.headers.get("Origin") !== relyingParty(request, env).origin) {
    throw new HttpError(403, "access_denied", "This call must come from the console's own origin.", {}, `origin ${request.headers.get("Origin") ?? "absent"}`);
  }
}
