import { DEFAULT_INTERVAL_SECONDS, SLOW_DOWN_STEP_SECONDS } from "../../core/limits";
import { acknowledgeDelivery } from "./acknowledge";
import { dpopProof, type DpopKey } from "./dpop";
import { KeyferryError } from "./errors";
import { abortedError, callApi, errorFromResponse, readServerError, type ApiResponse, type HttpContext } from "./http";
import { openCredential, type ApprovedCredential } from "./open-credential";
import type { PendingRequest } from "./request";
import { ReturnChannel, type WebSocketFactory } from "./return-channel";
import type { Clock, Sleep } from "./sleep";
import { asObject } from "./validate";

export type { ApprovedCredential } from "./open-credential";

export interface WaitOptions {
  /** Give up after this many milliseconds with `TIMEOUT`. Default: until the server says the request expired. */
  timeout?: number;
  /** Abort the wait with `ABORTED`. */
  signal?: AbortSignal;
  /** Seconds between polls when this client did not make the request itself (default 5). */
  interval?: number;
  /** Wait on the return channel (default `true` where the client has a WebSocket); `false` polls only. */
  returnChannel?: boolean;
  /**
   * Acknowledge the delivery of a key-bound request once the credential is decrypted in hand (default
   * `true`), so the server forgets the answer it kept for a lost response. `false`: call
   * `credentials.acknowledge(deviceCode)` yourself once you have stored the credential.
   */
  acknowledge?: boolean;
}

/** Network failures and 5xx answers in a row that a wait rides out before giving up with the error. */
export const MAX_TRANSIENT_FAILURES = 3;
/** With the channel open, one poll this long after the request's expiry in case the server's `expired` was lost. */
const EXPIRY_GRACE_MS = 5000;
const POLL_PATH = "/v1/credentials/poll";
const WHAT = "credentials.waitForApproval";

type PollOutcome =
  | { kind: "pending" }
  | { kind: "slow_down" }
  | { kind: "transient"; error: KeyferryError; retryAfter: number }
  | { kind: "approved"; body: Record<string, unknown> };

/**
 * Waits for the operator's decision and returns the credential. By default on the return channel
 * (sdk/README.md, "credentials.waitForApproval()"): a WebSocket on which the server announces the decision, after which
 * one poll delivers the credential at once. Where the runtime has no WebSocket, or while the socket
 * is down (it reconnects with backoff while the request lives), it polls `POST /v1/credentials/poll`
 * like oauth4webapi's device-flow loop (RFC 8628 §3.4-3.5): one poll per `interval`, +5 s for good
 * on each `slow_down`. Each poll of a key-bound request carries a fresh DPoP proof (RFC 9449 §4).
 * In end-to-end mode the credential arrives as a JWE and is decrypted with the private key this
 * client kept; the keys are forgotten once the request is finished (delivered, denied, expired or
 * unknown). After `TIMEOUT`, `ABORTED` or `NETWORK` they are kept, so the wait can be resumed.
 * A poll whose answer is lost (network error, 5xx) is retried, one interval apart, up to
 * MAX_TRANSIENT_FAILURES times: a key-bound request's server keeps a delivered answer for its grace
 * window (60 s by default) and serves it again to this client's key. The DPoP key is kept until the
 * delivery is acknowledged (`acknowledge`).
 */
export async function waitForApproval(
  http: HttpContext,
  clock: { now: Clock; sleep: Sleep },
  webSocket: WebSocketFactory | undefined,
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
  let interval = request?.interval ?? options.interval ?? DEFAULT_INTERVAL_SECONDS;
  const start = clock.now();
  const deadline = timeout === undefined ? Number.POSITIVE_INFINITY : start + timeout;
  const liveUntil = request?.expiresAt ?? Number.POSITIVE_INFINITY;
  // The operator cannot have approved before one interval has passed since the request was made;
  // a client that did not make the request polls at once.
  let nextPollAt = request ? Math.max(request.requestedAt + interval * 1000, request.nextPollAt ?? 0) : start;
  let failures = 0;
  const channel = webSocket && options.returnChannel !== false ? new ReturnChannel(webSocket, http.baseUrl, deviceCode, clock.now, request?.dpop) : undefined;

  try {
    for (;;) {
      const news = channel?.take();
      if (news === "expired") {
        pending.delete(deviceCode);
        throw new KeyferryError("EXPIRED_TOKEN", "the request expired before it was approved");
      }
      // On "decided" the server serves the next poll at once (never slow_down): poll now.
      if (news !== "decided") {
        channel?.maintain(liveUntil);
        const pollAt = channel?.open ? Math.max(liveUntil + EXPIRY_GRACE_MS, nextPollAt) : nextPollAt;
        // No reconnect once the request is past its expiry (sdk/README.md, "credentials.waitForApproval()": while the request lives).
        const reconnectAt = channel && channel.reconnectAt < liveUntil ? channel.reconnectAt : Number.POSITIVE_INFINITY;
        const wakeAt = Math.min(pollAt, reconnectAt);
        if (wakeAt > deadline) {
          if ((await nap(clock, deadline - clock.now(), signal, channel)) === "channel") continue;
          throw new KeyferryError("TIMEOUT", `no answer from the operator within ${Math.round(timeout! / 1000)} s`);
        }
        if ((await nap(clock, wakeAt - clock.now(), signal, channel)) === "channel" || clock.now() < pollAt) continue;
      }

      const outcome = await pollOnce(http, clock.now, pending, deviceCode, request?.dpop, signal);
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
          return await delivered(http, clock.now, pending, deviceCode, outcome.body, options.acknowledge !== false);
      }
      // A resumed wait (wait_for_credential's slices) never polls early (RFC 8628 §3.5).
      if (request) request.nextPollAt = nextPollAt;
    }
  } finally {
    channel?.close();
  }
}

/**
 * The credential from a delivering poll. The request's private key goes at once; its DPoP key stays
 * until the acknowledgement, which is best effort: unacknowledged, the server's window ends by itself.
 */
async function delivered(
  http: HttpContext,
  now: Clock,
  pending: Map<string, PendingRequest>,
  deviceCode: string,
  body: Record<string, unknown>,
  acknowledge: boolean,
): Promise<ApprovedCredential> {
  const request = pending.get(deviceCode);
  let credential: ApprovedCredential;
  try {
    credential = await openCredential(body, request);
  } catch (error) {
    pending.delete(deviceCode);
    throw error;
  }
  if (request) request.privateKey = undefined;
  if (acknowledge) await acknowledgeDelivery(http, now, pending, deviceCode).catch(() => pending.delete(deviceCode));
  return credential;
}

/**
 * Sleeps `ms` (forever when infinite) unless the channel changes first; the caller's signal aborts.
 * The injected `sleep` keeps waits testable without real time.
 */
async function nap(
  clock: { sleep: Sleep },
  ms: number,
  signal: AbortSignal | undefined,
  channel: ReturnChannel | undefined,
): Promise<"timer" | "channel"> {
  if (!channel) {
    await clock.sleep(Math.max(0, ms), signal);
    return "timer";
  }
  // One controller ends the sleep when the caller aborts or the nap is over (not AbortSignal.any,
  // whose propagation differs between runtimes).
  const stop = new AbortController();
  const forward = () => stop.abort();
  signal?.addEventListener("abort", forward, { once: true });
  const changed = channel.changed();
  const aborted = new Promise<never>((_, reject) => stop.signal.addEventListener("abort", () => reject(new Error("nap over")), { once: true }));
  const timer = Number.isFinite(ms) ? clock.sleep(Math.max(0, ms), stop.signal).then(() => "timer" as const) : aborted;
  timer.catch(() => undefined);
  aborted.catch(() => undefined);
  try {
    if (signal?.aborted) throw abortedError(signal);
    return await Promise.race([timer, aborted, changed.promise.then(() => "channel" as const)]);
  } catch (error) {
    if (signal?.aborted) throw abortedError(signal);
    throw error;
  } finally {
    signal?.removeEventListener("abort", forward);
    changed.cancel();
    stop.abort();
  }
}

/** One poll (RFC 8628 §3.4) with a fresh DPoP proof when the request is key-bound, classified; finished requests forget their keys. */
async function pollOnce(
  http: HttpContext,
  now: Clock,
  pending: Map<string, PendingRequest>,
  code: string,
  dpop: DpopKey | undefined,
  signal: AbortSignal | undefined,
): Promise<PollOutcome> {
  let response: ApiResponse;
  try {
    const headers = dpop ? { dpop: await dpopProof(dpop, "POST", http.baseUrl + POLL_PATH, now()) } : undefined;
    response = await callApi(http, { method: "POST", path: POLL_PATH, body: { device_code: code }, auth: false, signal, headers });
  } catch (error) {
    if (error instanceof KeyferryError && (error.code === "NETWORK" || error.code === "SERVER_ERROR")) {
      return { kind: "transient", error, retryAfter: 0 };
    }
    throw error;
  }
  if (response.status === 200) return { kind: "approved", body: asObject(response.body, WHAT) };
  const server = readServerError(response.body);
  if (response.status === 400 && server) {
    const fail = (finished: "ACCESS_DENIED" | "EXPIRED_TOKEN" | "INVALID_GRANT", message: string) => {
      pending.delete(code);
      return new KeyferryError(finished, message, { status: 400, serverError: server.error });
    };
    switch (server.error) {
      case "authorization_pending":
        return { kind: "pending" };
      case "slow_down":
        return { kind: "slow_down" };
      case "access_denied":
        throw fail("ACCESS_DENIED", "the operator denied the request (or too many approval attempts failed)");
      case "expired_token":
        throw fail("EXPIRED_TOKEN", "the request expired before it was approved");
      case "invalid_grant":
        throw fail("INVALID_GRANT", "the device code is unknown or its credential was already delivered");
      case "invalid_dpop_proof":
        // Nothing was consumed (RFC 9449 §7.1); without the request's key this client cannot collect it.
        throw dpop
          ? new KeyferryError("INVALID_DPOP_PROOF", `${WHAT}: the server refused this client's DPoP proof (is the clock more than 60 s off?)`, { status: 400, serverError: server.error })
          : new KeyferryError("MISSING_KEY", "the request is bound to a DPoP key this client does not hold (was it made by another client?)", { status: 400, serverError: server.error });
    }
  }
  const error = errorFromResponse(response, WHAT);
  if (error.code === "SERVER_ERROR" && response.status >= 500) return { kind: "transient", error, retryAfter: 0 };
  if (error.code === "RATE_LIMITED") return { kind: "transient", error, retryAfter: error.retryAfter ?? 0 };
  throw error;
}
