import { exportJWK, generateKeyPair, type JWK } from "jose";
import { keyFingerprint } from "../../core/fingerprint";
import { DEFAULT_INTERVAL_SECONDS, MAX_DESCRIPTION_LENGTH } from "../../core/limits";
import { createDpopKey, type DpopKey } from "./dpop";
import { KeyferryError } from "./errors";
import { callApi, errorFromResponse, type HttpContext } from "./http";
import type { Clock } from "./sleep";
import { asObject, checkVaultKey, optionalStringField, positiveIntegerField, stringField } from "./validate";

export interface CredentialRequestOptions {
  /** What the operator is asked for, shown on the approval page (1-200 characters). */
  description: string;
  /** The vault key name the credential is meant for (`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`). */
  vaultKey: string;
  /**
   * End-to-end encryption (default `true`): the client makes an ephemeral ECDH P-256 key pair, sends
   * the public key, and the operator's browser encrypts the credential to it. `false` sends no key;
   * the service then encrypts the credential at rest to a per-request key of its own.
   */
  endToEnd?: boolean;
  /** `"code"` (default): the operator types the user code. `"push"`: the operator is notified with a link. */
  hint?: "code" | "push";
  /**
   * Key-bound delivery (default `true`, RFC 9449): the client makes an ES256 key for this request
   * (private half non-extractable) and sends its thumbprint as `dpop_jkt`; the server then delivers
   * only to a poll signed with it, so a leaked device code is worthless. `false` for servers before v1.1.
   */
  dpop?: boolean;
  signal?: AbortSignal;
}

export interface CredentialRequest {
  /** The secret the client polls with. Keep it out of logs. */
  deviceCode: string;
  /** `XXXX-XXXX`, or `null` in push mode. */
  userCode: string | null;
  verificationUri: string | null;
  verificationUriComplete: string | null;
  /** Seconds the request lives, as the server granted. */
  expiresIn: number;
  expiresAt: Date;
  /** Seconds between polls, as the server asked. */
  interval: number;
  /** The fingerprint of this client's public key (`ABCD-EFGH-IJKL-MNOP`), or `null` when not end to end. */
  keyFingerprint: string | null;
  /** The server's message, plus the key fingerprint the operator should see on the page. */
  message: string;
  endToEnd: boolean;
}

/** What the client keeps in memory between `request` and `waitForApproval`. */
export interface PendingRequest {
  vaultKey: string;
  privateKey: CryptoKey | undefined;
  /** The key every poll proves possession of, when the request is key-bound. */
  dpop: DpopKey | undefined;
  interval: number;
  requestedAt: number;
  expiresAt: number;
  /** When the next poll is due: a resumed wait never polls early, which would earn a slow_down (RFC 8628 §3.5). */
  nextPollAt?: number;
}

const WHAT = "credentials.request";

/** RFC 8628 §3.1-3.2 through Keyferry's `POST /v1/credentials/request`. */
export async function requestCredential(
  http: HttpContext,
  now: Clock,
  pending: Map<string, PendingRequest>,
  options: CredentialRequestOptions,
): Promise<CredentialRequest> {
  if (typeof options !== "object" || options === null) throw new KeyferryError("INVALID_ARGUMENT", "request options are required");
  const { description, endToEnd = true, hint, dpop: keyBound = true } = options;
  if (typeof description !== "string" || description.trim() === "" || description.length > MAX_DESCRIPTION_LENGTH) {
    throw new KeyferryError("INVALID_ARGUMENT", `description must be 1-${MAX_DESCRIPTION_LENGTH} characters`);
  }
  const vaultKey = checkVaultKey(options.vaultKey);
  if (hint !== undefined && hint !== "code" && hint !== "push") {
    throw new KeyferryError("INVALID_ARGUMENT", 'hint must be "code" or "push"');
  }

  let privateKey: CryptoKey | undefined;
  let publicJwk: JWK | undefined;
  if (endToEnd) {
    const pair = await generateKeyPair("ECDH-ES", { crv: "P-256", extractable: false });
    privateKey = pair.privateKey;
    const { kty, crv, x, y } = await exportJWK(pair.publicKey);
    publicJwk = { kty, crv, x, y };
  }

  const dpop = keyBound ? await createDpopKey() : undefined;

  const body: Record<string, unknown> = { description, vault_key: vaultKey };
  if (publicJwk) body.public_key = publicJwk;
  if (dpop) body.dpop_jkt = dpop.jkt;
  if (hint) body.hint = hint;
  const requestedAt = now();
  const response = await callApi(http, { method: "POST", path: "/v1/credentials/request", body, auth: true, signal: options.signal });
  if (response.status !== 200) throw errorFromResponse(response, WHAT);

  const answer = asObject(response.body, WHAT);
  const deviceCode = stringField(answer, "device_code", WHAT);
  const expiresIn = positiveIntegerField(answer, "expires_in", WHAT);
  const interval = answer.interval === undefined ? DEFAULT_INTERVAL_SECONDS : positiveIntegerField(answer, "interval", WHAT);
  const userCode = optionalStringField(answer, "user_code", WHAT);
  const verificationUri = optionalHttpUrl(answer, "verification_uri");
  const verificationUriComplete = optionalHttpUrl(answer, "verification_uri_complete");
  if (hint !== "push" && (userCode === null || verificationUri === null)) {
    throw new KeyferryError("INVALID_RESPONSE", `${WHAT}: the server's answer lacks "user_code" or "verification_uri"`);
  }
  const serverMessage =
    optionalStringField(answer, "message", WHAT) ??
    (userCode ? `Ask your operator to visit ${verificationUri} and enter code ${userCode}` : "Your operator was notified.");

  const fingerprint = publicJwk ? await keyFingerprint(publicJwk) : null;
  const message = fingerprint
    ? `${serverMessage.replace(/\.?\s*$/, ".")} The approval page must show key fingerprint ${fingerprint}.`
    : serverMessage;

  const expiresAt = requestedAt + expiresIn * 1000;
  for (const [code, entry] of pending) if (entry.expiresAt < requestedAt) pending.delete(code);
  pending.set(deviceCode, { vaultKey, privateKey, dpop, interval, requestedAt, expiresAt });

  return {
    deviceCode,
    userCode,
    verificationUri,
    verificationUriComplete,
    expiresIn,
    expiresAt: new Date(expiresAt),
    interval,
    keyFingerprint: fingerprint,
    message,
    endToEnd,
  };
}

/** A verification URI is shown and turned into a QR code: only http(s) is acceptable. */
function optionalHttpUrl(answer: Record<string, unknown>, field: string): string | null {
  const value = optionalStringField(answer, field, WHAT);
  if (value === null) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new KeyferryError("INVALID_RESPONSE", `${WHAT}: the server's field "${field}" is not a URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new KeyferryError("INVALID_RESPONSE", `${WHAT}: the server's field "${field}" is not an http(s) URL`);
  }
  return value;
}
