/**
 * Polling, shared by `/v1/credentials/poll` and `/oauth/token` (RFC 8628 §3.4–3.5, CIBA Core §10–11).
 * Forged handles are dropped here without touching a Durable Object, and an expired one is answered
 * from the handle itself, even after the request's storage was erased (DESIGN.md).
 */
import { base64url } from "jose";
import type { PollResult, RequestDetails } from "../durable-objects/request-types";
import { HttpError } from "./errors";
import { sha256 } from "./hashing";
import { openPayload } from "./request-keys";
import { requestStub } from "./stubs";
import { stringClaim, verifyToken, type TokenKind } from "./tokens";

export type Delivered =
  | { vaultKey: string; description: string; credentialValue: string }
  | { vaultKey: string; description: string; credentialJwe: string };

/** Returns the credential once, or throws the RFC 8628 §3.5 error for the poll. */
export async function pollRequest(
  env: Env,
  kind: TokenKind,
  handle: string,
  client: { agentId: string; keyHash: string; apiKey: string } | null,
): Promise<Delivered> {
  const verified = await verifyToken(env, kind, handle);
  if (verified.reason === "invalid") throw pollError({ reason: "invalid_grant" });
  // `exp` is whole seconds; `xat` is the request's expiry to the millisecond, so the answer turns to
  // expired_token at the same instant the alarm may erase the request.
  const expiredAt = verified.claims.xat;
  if (verified.reason === "expired" || (typeof expiredAt === "number" && Date.now() >= expiredAt)) {
    throw pollError({ reason: "expired_token" });
  }
  const userCode = stringClaim(verified.claims, "uc");
  const secretText = stringClaim(verified.claims, "sec");
  if (!userCode || !secretText) throw pollError({ reason: "invalid_grant" });
  const secret = base64url.decode(secretText);
  const result = await requestStub(env, userCode).poll(await sha256(secret), client && { agentId: client.agentId, keyHash: client.keyHash });
  if (result.reason !== "delivered") throw pollError(result);
  // An auth_req_id's payload key is wrapped under the client's API key (worker/issue-request.ts).
  const wrapSecret = kind === "auth_req_id" && client ? new TextEncoder().encode(client.apiKey) : secret;
  return deliver(result.details, result.payload, wrapSecret);
}

async function deliver(details: RequestDetails, payload: string, secret: Uint8Array): Promise<Delivered> {
  const { vaultKey, description } = details;
  if (details.publicKey || !details.wrappedPrivateKey) return { vaultKey, description, credentialJwe: payload };
  try {
    return { vaultKey, description, credentialValue: await openPayload(payload, details.wrappedPrivateKey, secret) };
  } catch {
    // Only a malformed JWE from the approving browser gets here; the request is already consumed.
    console.error("delivered payload could not be opened", details.requestId);
    throw new HttpError(400, "invalid_grant", "The approved credential could not be decrypted; ask for it again.");
  }
}

/** The one mapping from a poll's reason to the wire (STYLE.md §3). */
function pollError(result: Exclude<PollResult, { reason: "delivered" }>): HttpError {
  switch (result.reason) {
    case "authorization_pending":
      return new HttpError(400, "authorization_pending", "The operator has not decided yet.");
    case "slow_down":
      return new HttpError(400, "slow_down", `Polling too often: wait at least ${result.interval} seconds between polls.`);
    case "access_denied":
      return new HttpError(400, "access_denied", "The request was denied.");
    case "expired_token":
      return new HttpError(400, "expired_token", "The request expired.");
    case "invalid_grant":
      return new HttpError(400, "invalid_grant", "The code is unknown, malformed or already used.");
    case "invalid_client":
      return new HttpError(401, "invalid_client", "Client authentication failed.");
  }
}
