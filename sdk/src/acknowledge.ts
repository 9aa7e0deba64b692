import { dpopProof } from "./dpop";
import { KeyferryError } from "./errors";
import { callApi, errorFromResponse, type HttpContext } from "./http";
import type { PendingRequest } from "./request";
import type { Clock } from "./sleep";

const ACK_PATH = "/v1/credentials/ack";
const WHAT = "credentials.acknowledge";

/**
 * `POST /v1/credentials/ack` (README, "Nothing lost to a dropped response"): tells the server that the
 * credential of a key-bound request is stored, so the answer it kept for a lost response goes now
 * rather than at the end of its grace window. The proof is signed by the request's DPoP key (RFC 9449),
 * which is forgotten afterwards. A request without that key (unbound, or already acknowledged) has
 * nothing kept on the server: nothing is sent.
 */
export async function acknowledgeDelivery(
  http: HttpContext,
  now: Clock,
  pending: Map<string, PendingRequest>,
  deviceCode: string,
  signal?: AbortSignal,
): Promise<void> {
  if (typeof deviceCode !== "string" || deviceCode === "") throw new KeyferryError("INVALID_ARGUMENT", "deviceCode must be a non-empty string");
  const dpop = pending.get(deviceCode)?.dpop;
  if (!dpop) {
    pending.delete(deviceCode);
    return;
  }
  const headers = { dpop: await dpopProof(dpop, "POST", http.baseUrl + ACK_PATH, now()) };
  const response = await callApi(http, { method: "POST", path: ACK_PATH, body: { device_code: deviceCode }, auth: false, signal, headers });
  if (response.status !== 204) throw errorFromResponse(response, WHAT);
  pending.delete(deviceCode);
}
