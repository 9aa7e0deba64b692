// The operator's side of a request through the page's JSON calls (README, "A handoff in five requests"),
// and the agent's plain endpoints, for tests that do not drive a browser.
import type { DeviceAuthorizationBody } from "../../../core/wire";
import { api } from "./api";
import { sleep } from "../../support/sleep";

// The operator's calls moved to ./api (shared with bench/); their old home keeps the names.
export { APPROVAL_COOKIE, decide, lookup, operatorDecides, type LookedUpRequest, type Lookup } from "./api";

export type DeviceAuthorization = DeviceAuthorizationBody;

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
