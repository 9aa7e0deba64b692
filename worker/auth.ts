/**
 * Who is calling: the admin (ADMIN_TOKEN), or an agent by its API key, as a Bearer token or as
 * OAuth client credentials (RFC 6749 §2.3.1: client_id = agent_id, client_secret = api_key).
 */
import { isAccountId, isAgentId } from "./ids";
import { requireSecret } from "./config";
import { HttpError } from "./errors";
import { sha256, secretsEqual } from "./hashing";
import { accountStub } from "./stubs";
import type { AgentIdentity } from "../durable-objects/request-types";

/** API keys name their account and agent, so the router reaches the right object without an index. */
const API_KEY_PATTERN = /^kf1\.(acc_[a-z0-9]{20})\.(agt_[a-z0-9]{20})\.([A-Za-z0-9_-]{43})$/;

export interface AgentCredentials {
  accountId: string;
  agentId: string;
  keyHash: string;
  /** Kept in memory only: CIBA requests wrap their payload key under it (worker/request-keys.ts). */
  apiKey: string;
}

export function newApiKey(accountId: string, agentId: string, secret: string): string {
  return `kf1.${accountId}.${agentId}.${secret}`;
}

export function bearerToken(request: Request): string | null {
  const header = request.headers.get("Authorization");
  const match = header?.match(/^Bearer[ ]+([\x21-\x7e]+)[ ]*$/i);
  return match ? match[1]! : null;
}

export async function requireAdmin(request: Request, env: Env): Promise<void> {
  const expected = requireSecret(env, "ADMIN_TOKEN");
  const token = bearerToken(request);
  if (token === null || !(await secretsEqual(token, expected))) {
    throw new HttpError(401, "invalid_token", "A valid admin token is required.", { "WWW-Authenticate": 'Bearer realm="keyferry-admin"' });
  }
}

const invalidClient = (basic = false) =>
  new HttpError(401, "invalid_client", "Client authentication failed.", {
    "WWW-Authenticate": basic ? 'Basic realm="keyferry"' : 'Bearer realm="keyferry"',
  });

async function credentialsOf(apiKey: string, basic: boolean): Promise<AgentCredentials> {
  const match = apiKey.match(API_KEY_PATTERN);
  if (!match || !isAccountId(match[1]!) || !isAgentId(match[2]!)) throw invalidClient(basic);
  return { accountId: match[1]!, agentId: match[2]!, keyHash: await sha256(apiKey), apiKey };
}

/** `Authorization: Bearer <api_key>`, parsed; the account object still has to confirm the hash. */
export async function agentFromBearer(request: Request): Promise<AgentCredentials> {
  const token = bearerToken(request);
  if (token === null) throw invalidClient();
  return credentialsOf(token, false);
}

/**
 * OAuth client authentication: `client_secret_basic` or `client_secret_post`, never both
 * (RFC 6749 §2.3). The client_id must be the agent the key belongs to.
 */
export async function agentFromClientAuth(request: Request, form: Record<string, string>): Promise<AgentCredentials> {
  const header = request.headers.get("Authorization");
  let clientId: string | undefined;
  let clientSecret: string | undefined;
  const basic = header !== null && /^Basic /i.test(header);
  if (basic) {
    if (form.client_secret !== undefined) throw new HttpError(400, "invalid_request", "Use one client authentication method, not two.");
    try {
      const decoded = atob(header.slice(6).trim());
      const colon = decoded.indexOf(":");
      if (colon < 0) throw invalidClient(true);
      clientId = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, " "));
      clientSecret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, " "));
    } catch {
      throw invalidClient(true);
    }
    if (form.client_id !== undefined && form.client_id !== clientId) throw invalidClient(true);
  } else if (header !== null && /^Bearer /i.test(header)) {
    clientSecret = bearerToken(request) ?? undefined;
    clientId = form.client_id;
  } else {
    clientId = form.client_id;
    clientSecret = form.client_secret;
  }
  if (!clientSecret) throw invalidClient(basic);
  const credentials = await credentialsOf(clientSecret, basic);
  if (clientId !== undefined && clientId !== credentials.agentId) throw invalidClient(basic);
  return credentials;
}

/** Confirms an agent's key with its account object: the key works until the agent is deleted. */
export async function requireAgent(
  env: Env,
  credentials: AgentCredentials,
): Promise<{ agent: AgentIdentity; operatorEmail: string; pingEndpoint: string | null }> {
  const result = await accountStub(env, credentials.accountId).authenticate(credentials.agentId, credentials.keyHash);
  if (result.reason !== "ok") throw invalidClient();
  return result;
}
