/**
 * The `DPoP` request header (RFC 9449 §4): read, checked by core/dpop.ts against this endpoint, and
 * turned into the key binding of a new request or the proof of a poll. A header that is present but
 * not a valid proof is refused at once (§4.3), before any Durable Object is touched.
 */
import { DPOP_MAX_AGE_SECONDS, checkDpopProof } from "../core/dpop";
import type { PollProof } from "../durable-objects/request/request-types";
import { baseUrl } from "./config";
import { HttpError } from "./errors";
import { sha256 } from "./hashing";

export const invalidDpopProof = (description = "The DPoP proof is missing or invalid for this request.") =>
  new HttpError(400, "invalid_dpop_proof", description);

/**
 * The call's proof, or null when it carries none; throws invalid_dpop_proof for a bad one. `header`:
 * the proof where it did not come as the `DPoP` header (a return-channel subprotocol).
 */
export async function dpopProof(request: Request, env: Env, header = request.headers.get("DPoP")): Promise<PollProof | null> {
  if (header === null) return null;
  // One proof only (§4.3 point 1); a repeated header arrives joined by a comma.
  if (header.includes(",")) throw invalidDpopProof();
  const url = new URL(request.url);
  // The URL the client was told (the metadata's, under PUBLIC_BASE_URL) and the one it reached.
  const htu = [`${baseUrl(request, env)}${url.pathname}`, `${url.origin}${url.pathname}`];
  const checked = await checkDpopProof(header, { htm: request.method, htu }, Date.now());
  if (checked.reason !== "ok") {
    console.log("DPoP proof refused:", checked.why);
    throw invalidDpopProof();
  }
  return { jkt: checked.jkt, jti: await sha256(checked.jti), until: (checked.iat + DPOP_MAX_AGE_SECONDS) * 1000 };
}

/**
 * The key a new request is bound to (§10): `dpop_jkt`, or the key of a `DPoP` proof on the call;
 * when both are given they must agree.
 */
export async function dpopBinding(request: Request, env: Env, dpopJkt: string | undefined): Promise<string | null> {
  const proof = await dpopProof(request, env);
  if (proof && dpopJkt !== undefined && proof.jkt !== dpopJkt) throw invalidDpopProof("dpop_jkt does not match the key of the DPoP proof.");
  return proof?.jkt ?? dpopJkt ?? null;
}
