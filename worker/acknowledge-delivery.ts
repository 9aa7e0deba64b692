/**
 * `POST /v1/credentials/ack` (README, "Nothing lost to a dropped response"): the agent has stored
 * the credential a DPoP-bound request delivered, so the answer kept for a lost response can go now
 * instead of at the grace window's end. Forged, expired or proof-less calls are answered here,
 * before any Durable Object is touched.
 */
import type { AckAnswer } from "../core/request-state";
import { dpopProof, invalidDpopProof } from "./dpop-header";
import { errorResponse, type WireError } from "./errors";
import { verifyHandle, type HandleKind } from "./handles";
import { noContent } from "./http";
import { pollWireError } from "./poll-request";
import { requestStub } from "./stubs";

export async function acknowledgeDelivery(request: Request, env: Env, kind: HandleKind, handle: string): Promise<Response> {
  const proof = await dpopProof(request, env);
  if (!proof) throw invalidDpopProof("Acknowledging needs a DPoP proof by the key the request is bound to (RFC 9449).");
  const verified = await verifyHandle(env, kind, handle);
  if (!verified) return errorResponse(pollWireError({ reason: "invalid_grant" }));
  if (Date.now() >= verified.expiresAt) return errorResponse(pollWireError({ reason: "expired_token" }));
  const answer = await requestStub(env, verified.userCode).acknowledge(verified.tag, proof);
  return answer.reason === "acknowledged" ? noContent() : errorResponse(ackWireError(answer.reason));
}

function ackWireError(reason: Exclude<AckAnswer["reason"], "acknowledged" | "check_jti">): WireError {
  switch (reason) {
    case "invalid_grant":
    case "expired_token":
    case "invalid_dpop_proof":
      return pollWireError({ reason });
    case "not_bound":
      return { status: 400, code: "invalid_grant", description: "This request is not bound to a DPoP key: it is delivered once, with nothing to acknowledge." };
    case "not_delivered":
      return { status: 400, code: "invalid_grant", description: "Nothing was delivered for this request yet." };
  }
}
