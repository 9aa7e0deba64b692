/**
 * Who is calling: the admin (ADMIN_TOKEN), or an agent by its API key, as a Bearer token or as
 * OAuth client credentials (RFC 6749 §2.3.1: client_id = agent_id, client_secret = api_key).
 *
 * An API key is `kf1.<account id>.<agent id>.<secret>.<tag>`: it names its account and agent, so the
 * router reaches the right object without an index, and the tag, HMAC-SHA-256 over everything
 * before it under a key HKDF-derived from TOKEN_SIGNING_KEY for this use alone
 * (worker/signing-keys.ts), lets the edge refuse a forged key before any Durable Object is touched.
 * The account object still compares the key's hash: the tag proves we issued the IDs, the hash that
 * the key is still this agent's.
 */
import { base64url } from "jose";
import { isAccountId, isAgentId } from "./ids";
import { adminToken } from "./config";
import { HttpError, invalidClient } from "./errors";
import { sha256, secretsEqual } from "./hashing";
import { hmacKey } from "./signing-keys";
import { accountStub } from "./stubs";
import type { AgentIdentity } from "../durable-objects/request/request-types";

/** The tag's last character carries 2 unused bits, which must be zero: one spelling per tag (as for handles). */
const API_KEY_PATTERN = /^(kf1\.(acc_[a-z0-9]{20})\.(agt_[a-z0-9]{20})\.[A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{42}[AEIMQUYcgkosw048])$/;
const encoder = new TextEncoder();

export interface AgentCredentials {
  accountId: string;
  agentId: string;
  keyHash: string;
  /** Kept in memory only: CIBA requests wrap their payload key under it (worker/request-keys.ts). */
  apiKey: string;
  /** The client authenticated with HTTP Basic: its failures are challenged with Basic (RFC 6749 §5.2). */
  basic: boolean;
}

export async function newApiKey(env: Env, accountId: string, agentId: string, secret: string): Promise<string> {
  const body = `kf1.${accountId}.${agentId}.${secret}`;
  const tag = await crypto.subtle.sign("HMAC", await hmacKey(env, "api_key"), encoder.encode(body));
  return `${body}.${base64url.encode(new Uint8Array(tag))}`;
}

export function bearerToken(request: Request): string | null {
  const header = request.headers.get("Authorization");
  const match = header?.match(/^Bearer[ ]+([\x21-\x7e]+)[ ]*$/i);
  return match ? match[1]! : null;
}

export async function requireAdmin(request: Request, env: Env): Promise<void> {
  const expected = adminToken(env);
  const token = bearerToken(request);
  if (token === null || !(await secretsEqual(token, expected))) {
    throw new HttpError(401, "invalid_token", "A valid admin token is required.", { "WWW-Authenticate": 'Bearer realm="keyferry-admin"' });
  }
}

/** A key of our making (its tag verified, in constant time); the account object still has to confirm its hash. */
async function credentialsOf(env: Env, apiKey: string, basic: boolean): Promise<AgentCredentials> {
  const match = apiKey.length <= 200 ? API_KEY_PATTERN.exec(apiKey) : null;
  if (!match || !isAccountId(match[2]!) || !isAgentId(match[3]!)) throw invalidClient(basic, "api key: malformed");
  const valid = await crypto.subtle.verify("HMAC", await hmacKey(env, "api_key"), base64url.decode(match[4]!), encoder.encode(match[1]!));
  if (!valid) throw invalidClient(basic, "api key: tag does not verify");
  return { accountId: match[2]!, agentId: match[3]!, keyHash: await sha256(apiKey), apiKey, basic };
}

/** `Authorization: Bearer <api_key>`, checked at the edge; the account object still has to confirm the hash. */
export async function agentFromBearer(request: Request, env: Env): Promise<AgentCredentials> {
  const token = bearerToken(request);
  if (token === null) throw invalidClient(false, "no bearer token");
  return credentialsOf(env, token, false);
}

/**
 * OAuth client authentication: `client_secret_basic` or `client_secret_post`, never both
 * (RFC 6749 §2.3). The client_id must be the agent the key belongs to.
 */
export async function agentFromClientAuth(request: Request, env: Env, form: Record<string, string>): Promise<AgentCredentials> {
  const header = request.headers.get("Authorization");
  let clientId: string | undefined;
  let clientSecret: string | undefined;
  const basic = header !== null && /^Basic /i.test(header);
  if (basic) {
    if (form.client_secret !== undefined) throw new HttpError(400, "invalid_request", "Use one client authentication method, not two.");
    try {
      const decoded = atob(header.slice(6).trim());
      const colon = decoded.indexOf(":");
      if (colon < 0) throw invalidClient(true, "basic: no colon");
      clientId = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, " "));
      clientSecret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, " "));
    } catch {
      throw invalidClient(true, "basic: not decodable");
    }
    if (form.client_id !== undefined && form.client_id !== clientId) throw invalidClient(true, "basic: client_id differs from the form's");
  } else if (header !== null && /^Bearer /i.test(header)) {
    clientSecret = bearerToken(request) ?? undefined;
    clientId = form.client_id;
  } else {
    clientId = form.client_id;
    clientSecret = form.client_secret;
  }
  if (!clientSecret) throw invalidClient(basic, "no client secret");
  const credentials = await credentialsOf(env, clientSecret, basic);
  if (clientId !== undefined && clientId !== credentials.agentId) throw invalidClient(basic, "client_id is not the key's agent");
  return credentials;
}

/** Confirms an agent's key with its account object: the key works until the agent is deleted. */
export async function requireAgent(
  env: Env,
  credentials: AgentCredentials,
): Promise<{ agent: AgentIdentity; operatorEmail: string; pingEndpoint: string | null }> {
  const result = await accountStub(env, credentials.accountId).authenticate(credentials.agentId, credentials.keyHash);
  if (result.reason !== "ok") throw invalidClient(credentials.basic, "account: unknown agent or key hash");
  return result;
}
