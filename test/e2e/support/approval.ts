// The operator's side of a request through the page's JSON calls (CONTRACT.md, "Operator approval"),
// and the agent's plain endpoints, for tests that do not drive a browser.
import type { JWK } from "jose";
import { api, cookieFrom, type ApiResponse } from "./api";

export const APPROVAL_COOKIE = "__Host-kf_approval";

export interface LookedUpRequest {
  agent: { id: string; name: string; email: string | null };
  account_id: string;
  description: string;
  vault_key: string;
  expires_at: string | number;
  user_code?: string | null;
  encryption_key: JWK;
  public_key?: JWK;
  binding_message?: string;
}

export interface Lookup {
  res: ApiResponse<{ approval_token: string; request: LookedUpRequest }>;
  /** The `__Host-kf_approval=…` pair the look-up set (send it back on decide), if any. */
  cookie: string | undefined;
}

export interface DeviceAuthorization {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
  message: string;
}

/** `POST /v1/credentials/request` as the agent. */
export function requestCredential(server: { url: string }, apiKey: string, body: Record<string, unknown>) {
  return api<DeviceAuthorization>(server, "POST", "/v1/credentials/request", body, { authorization: `Bearer ${apiKey}` });
}

/** `POST /v1/credentials/poll`: no bearer, the device code is the secret. */
export function pollCredential(server: { url: string }, deviceCode: string) {
  return api<{ error?: string; credential_value?: string; credential_jwe?: string; vault_key?: string; description?: string }>(
    server, "POST", "/v1/credentials/poll", { device_code: deviceCode },
  );
}

export async function lookup(
  server: { url: string },
  body: { user_code: string; email: string } | { link_token: string },
  cookie?: string,
): Promise<Lookup> {
  const res = await api<{ approval_token: string; request: LookedUpRequest }>(
    server, "POST", "/v1/approvals/lookup", body, cookie ? { cookie } : {},
  );
  return { res, cookie: cookieFrom(res, APPROVAL_COOKIE) ?? cookie };
}

export function decide(server: { url: string }, cookie: string | undefined, body: Record<string, unknown>) {
  return api<{ status?: string; error?: string }>(server, "POST", "/v1/approvals/decide", body, cookie ? { cookie } : {});
}

/** Looks the code up as the operator and decides; throws with the server's answer if either step fails. */
export async function operatorDecides(
  server: { url: string },
  userCode: string,
  email: string,
  decision: { decision: "deny" } | { decision: "approve"; credential_value: string } | { decision: "approve"; credential_jwe: string },
): Promise<void> {
  const found = await lookup(server, { user_code: userCode, email });
  if (found.res.status !== 200) throw new Error(`lookup: expected 200, got ${found.res.status} ${found.res.text}`);
  const decided = await decide(server, found.cookie, { approval_token: found.res.json.approval_token, ...decision });
  if (decided.status !== 200) throw new Error(`decide: expected 200, got ${decided.status} ${decided.text}`);
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/**
 * Polls the plain endpoint, honouring `interval` and `slow_down`, until the answer is no longer
 * `authorization_pending` or `timeoutMs` passes (then throws).
 */
export async function pollUntilSettled(
  server: { url: string },
  deviceCode: string,
  intervalSeconds: number,
  timeoutMs: number,
): Promise<Awaited<ReturnType<typeof pollCredential>>> {
  const deadline = Date.now() + timeoutMs;
  let interval = intervalSeconds;
  for (;;) {
    const res = await pollCredential(server, deviceCode);
    if (res.json.error === "slow_down") interval += 5;
    else if (res.json.error !== "authorization_pending") return res;
    if (Date.now() + interval * 1000 > deadline) throw new Error(`still ${res.json.error} after ${timeoutMs} ms`);
    await sleep(interval * 1000);
  }
}
