import { compactDecrypt } from "jose";
import { CREDENTIAL_JWE_ALG, CREDENTIAL_JWE_ENC } from "../../core/jwe";
import { KeyferryError } from "./errors";
import { abortedError, callApi, errorFromResponse, readServerError, type ApiResponse, type HttpContext } from "./http";
import type { PendingRequest } from "./request";
import type { Clock, Sleep } from "./sleep";
import { asObject, stringField } from "./validate";

export interface WaitOptions {
  /** Give up after this many milliseconds with `TIMEOUT` (checked between polls). Default: until the server says the request expired. */
  timeout?: number;
  /** Abort the wait with `ABORTED`. */
  signal?: AbortSignal;
  /** Seconds between polls when this client did not make the request itself (default 5). */
  interval?: number;
}

export interface ApprovedCredential {
  vaultKey: string;
  description: string;
  /** The credential, decrypted on this machine in end-to-end mode. */
  credentialValue: string;
}

/** RFC 8628 §3.5: `slow_down` raises the interval by 5 seconds for all later polls. */
export const SLOW_DOWN_STEP_SECONDS = 5;
/** Network failures and 5xx answers in a row that a wait rides out before giving up with the error. */
export const MAX_TRANSIENT_FAILURES = 3;

const WHAT = "credentials.waitForApproval";

type PollOutcome =
  | { kind: "pending" }
  | { kind: "slow_down" }
  | { kind: "transient"; error: KeyferryError; retryAfter: number }
  | { kind: "approved"; body: Record<string, unknown> };

/**
 * Polls `POST /v1/credentials/poll` until the request is approved, denied or expired (RFC 8628 §3.4-3.5),
 * like oauth4webapi's device-flow loop: one poll per `interval`, +5 s for good on each `slow_down`.
 * In end-to-end mode the credential arrives as a JWE and is decrypted with the private key this
 * client kept; the key is forgotten once the request is finished (delivered, denied, expired or
 * unknown). After `TIMEOUT`, `ABORTED` or `NETWORK` it is kept, so the wait can be resumed.
 */
export async function waitForApproval(
  http: HttpContext,
  clock: { now: Clock; sleep: Sleep },
  pending: Map<string, PendingRequest>,
  deviceCode: string,
  options: WaitOptions = {},
): Promise<ApprovedCredential> {
  if (typeof deviceCode !== "string" || deviceCode === "") throw new KeyferryError("INVALID_ARGUMENT", "deviceCode must be a non-empty string");
  const { timeout, signal } = options;
  if (timeout !== undefined && !(typeof timeout === "number" && timeout >= 0 && Number.isFinite(timeout))) {
    throw new KeyferryError("INVALID_ARGUMENT", "timeout must be a finite number of milliseconds >= 0");
  }
  if (options.interval !== undefined && !(Number.isInteger(options.interval) && options.interval > 0)) {
    throw new KeyferryError("INVALID_ARGUMENT", "interval must be a positive whole number of seconds");
  }
  if (signal?.aborted) throw abortedError(signal);

  const request = pending.get(deviceCode);
  let interval = request?.interval ?? options.interval ?? 5;
  const start = clock.now();
  const deadline = timeout === undefined ? undefined : start + timeout;
  // The operator cannot have approved before one interval has passed since the request was made;
  // a client that did not make the request polls at once.
  let nextPollAt = request ? Math.max(request.requestedAt + interval * 1000, request.nextPollAt ?? 0) : start;
  let failures = 0;

  for (;;) {
    const wait = Math.max(0, nextPollAt - clock.now());
    if (deadline !== undefined && clock.now() + wait > deadline) {
      await clock.sleep(Math.max(0, deadline - clock.now()), signal);
      throw new KeyferryError("TIMEOUT", `no answer from the operator within ${Math.round(timeout! / 1000)} s`);
    }
    await clock.sleep(wait, signal);

    const outcome = await pollOnce(http, pending, deviceCode, signal);
    const polledAt = clock.now();
    switch (outcome.kind) {
      case "pending":
        failures = 0;
        nextPollAt = polledAt + interval * 1000;
        break;
      case "slow_down":
        failures = 0;
        interval += SLOW_DOWN_STEP_SECONDS;
        if (request) request.interval = interval;
        nextPollAt = polledAt + interval * 1000;
        break;
      case "transient":
        failures += 1;
        if (failures > MAX_TRANSIENT_FAILURES) throw outcome.error;
        nextPollAt = polledAt + Math.max(interval, outcome.retryAfter) * 1000;
        break;
      case "approved":
        pending.delete(deviceCode);
        return openCredential(outcome.body, request);
    }
    if (request) request.nextPollAt = nextPollAt;
  }
}

/** One poll (RFC 8628 §3.4), classified; finished requests forget their key. */
async function pollOnce(
  http: HttpContext,
  pending: Map<string, PendingRequest>,
  code: string,
  signal: AbortSignal | undefined,
): Promise<PollOutcome> {
  let response: ApiResponse;
  try {
    response = await callApi(http, { method: "POST", path: "/v1/credentials/poll", body: { device_code: code }, auth: false, signal });
  } catch (error) {
    if (error instanceof KeyferryError && (error.code === "NETWORK" || error.code === "SERVER_ERROR")) {
      return { kind: "transient", error, retryAfter: 0 };
    }
    throw error;
  }
  if (response.status === 200) return { kind: "approved", body: asObject(response.body, WHAT) };
  const server = readServerError(response.body);
  if (response.status === 400 && server) {
    switch (server.error) {
      case "authorization_pending":
        return { kind: "pending" };
      case "slow_down":
        return { kind: "slow_down" };
      case "access_denied":
        pending.delete(code);
        throw new KeyferryError("ACCESS_DENIED", "the operator denied the request (or too many approval attempts failed)", {
          status: 400,
          serverError: server.error,
        });
      case "expired_token":
        pending.delete(code);
        throw new KeyferryError("EXPIRED_TOKEN", "the request expired before it was approved", { status: 400, serverError: server.error });
      case "invalid_grant":
        pending.delete(code);
        throw new KeyferryError("INVALID_GRANT", "the device code is unknown or its credential was already delivered", {
          status: 400,
          serverError: server.error,
        });
    }
  }
  const error = errorFromResponse(response, WHAT);
  if (error.code === "SERVER_ERROR" && response.status >= 500) return { kind: "transient", error, retryAfter: 0 };
  if (error.code === "RATE_LIMITED") return { kind: "transient", error, retryAfter: error.retryAfter ?? 0 };
  throw error;
}

async function openCredential(body: Record<string, unknown>, request: PendingRequest | undefined): Promise<ApprovedCredential> {
  const vaultKey = stringField(body, "vault_key", WHAT);
  const description = typeof body.description === "string" ? body.description : "";
  if (request && vaultKey !== request.vaultKey) {
    throw new KeyferryError("INVALID_RESPONSE", `${WHAT}: the server delivered a credential for another vault key than requested`);
  }
  const jwe = body.credential_jwe;
  const value = body.credential_value;

  if (typeof jwe === "string" && jwe !== "") {
    if (!request?.privateKey) {
      throw new KeyferryError("MISSING_KEY", "the credential is encrypted to a key this client does not hold (was the request made by another client?)");
    }
    let plaintext: Uint8Array;
    try {
      ({ plaintext } = await compactDecrypt(jwe, request.privateKey, {
        keyManagementAlgorithms: [CREDENTIAL_JWE_ALG],
        contentEncryptionAlgorithms: [CREDENTIAL_JWE_ENC],
      }));
    } catch {
      throw new KeyferryError("DECRYPTION_FAILED", "the delivered credential could not be decrypted with this client's private key");
    }
    try {
      return { vaultKey, description, credentialValue: new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(plaintext) };
    } catch {
      throw new KeyferryError("INVALID_RESPONSE", "the delivered credential is not UTF-8 text");
    }
  }
  if (typeof value === "string" && value !== "") {
    if (request?.privateKey) {
      // A server that answers in the clear what it was asked to pass end to end is not trusted with it.
      throw new KeyferryError("INVALID_RESPONSE", "end-to-end encryption was requested but the server delivered the credential in the clear");
    }
    return { vaultKey, description, credentialValue: value };
  }
  throw new KeyferryError("INVALID_RESPONSE", `${WHAT}: the server's answer lacks "credential_jwe" or "credential_value"`);
}
