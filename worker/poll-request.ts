/**
 * Polling, shared by `/v1/credentials/poll` and `/oauth/token` (RFC 8628 §3.4–3.5, CIBA Core §10–11).
 * Forged handles are dropped here without touching a Durable Object, and an expired one is answered
 * from the handle itself, even after the request's storage was erased (DESIGN.md).
 */
import { base64url } from "jose";
import type { Actor, DeliveredDetails, PollProof, PollResult } from "../durable-objects/request/request-types";
import { advertisedInterval } from "./config";
import { invalidClient, type WireError } from "./errors";
import { verifyHandle, type HandleKind } from "./handles";
import { openPayload } from "./request-keys";
import { requestStub } from "./stubs";

/** `bound`: the request was bound to a DPoP key (RFC 9449), so /oauth/token says `token_type: DPoP`. */
export type Delivered =
  | { vaultKey: string; description: string; bound: boolean; credentialValue: string }
  | { vaultKey: string; description: string; bound: boolean; credentialJwe: string };

/**
 * The credential, once, or the RFC 8628 §3.5 answer for the poll. Answers are returned, not thrown:
 * "authorization_pending" is the common case, and it should cost no exception.
 */
export type PollAnswer = { delivered: Delivered } | { error: WireError };

export async function pollRequest(
  env: Env,
  kind: HandleKind,
  handle: string,
  client: { agentId: string; keyHash: string; apiKey: string; basic: boolean } | null,
  extra: { proof: PollProof | null; actor: Actor } | null = null,
): Promise<PollAnswer> {
  const verified = await verifyHandle(env, kind, handle);
  if (!verified) return pollError({ reason: "invalid_grant" });
  // To the millisecond, so the answer turns to expired_token at the instant the alarm may erase the request.
  if (Date.now() >= verified.expiresAt) return pollError({ reason: "expired_token" });
  const result = await requestStub(env, verified.userCode).poll(
    verified.tag,
    client && { agentId: client.agentId, keyHash: client.keyHash },
    extra?.proof ?? null,
    extra?.actor ?? null,
  );
  if (result.reason !== "delivered") return pollError(result, client?.basic ?? false);
  // An auth_req_id's payload key is wrapped under the client's API key (worker/issue-request.ts).
  const wrapSecret = kind === "auth_req_id" && client ? new TextEncoder().encode(client.apiKey) : base64url.decode(verified.secret);
  return deliver(result.details, result.payload, wrapSecret);
}

async function deliver(details: DeliveredDetails, payload: string, secret: Uint8Array): Promise<PollAnswer> {
  const { vaultKey, description } = details;
  const bound = Boolean(details.dpopJkt);
  if (details.publicKey || !details.wrappedPrivateKey) return { delivered: { vaultKey, description, bound, credentialJwe: payload } };
  try {
    return { delivered: { vaultKey, description, bound, credentialValue: await openPayload(payload, details.wrappedPrivateKey, secret) } };
  } catch {
    // Only a malformed JWE from the approving browser gets here; the request is already consumed.
    console.error("delivered payload could not be opened", details.requestId);
    return { error: { status: 400, code: "invalid_grant", description: "The approved credential could not be decrypted; ask for it again." } };
  }
}

/** The one mapping from a poll's reason to the wire (STYLE.md §3). */
function pollError(result: Exclude<PollResult, { reason: "delivered" }>, basic = false): { error: WireError } {
  return { error: pollWireError(result, basic) };
}

export function pollWireError(result: Exclude<PollResult, { reason: "delivered" }>, basic = false): WireError {
  switch (result.reason) {
    case "authorization_pending":
      return { status: 400, code: "authorization_pending", description: "The operator has not decided yet." };
    case "slow_down":
      return { status: 400, code: "slow_down", description: `Polling too often: wait at least ${advertisedInterval(result.interval)} seconds between polls.` };
    case "access_denied":
      return { status: 400, code: "access_denied", description: "The request was denied." };
    case "expired_token":
      return { status: 400, code: "expired_token", description: "The request expired." };
    case "invalid_grant":
      return { status: 400, code: "invalid_grant", description: "The code is unknown, malformed or already used." };
    case "invalid_client":
      // RFC 6749 §5.2: a 401 carries the challenge for the scheme the client used.
      return invalidClient(basic, "request object: the key hash is not the requester's");
    case "invalid_dpop_proof":
      return { status: 400, code: "invalid_dpop_proof", description: "This request is bound to a DPoP key: poll with a fresh proof by that key (RFC 9449)." };
  }
}
