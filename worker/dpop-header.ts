/**
 * The `DPoP` request header (RFC 9449 §4): read, checked by core/dpop.ts against this endpoint, and
 * turned into the key binding of a new request or the proof of a poll. A header that is present but
 * not a valid proof is refused at once (§4.3), before any Durable Object is touched.
 */
import { checkDpopProof } from "../core/dpop";
import type { PollProof } from "../durable-objects/request/request-types";
import { baseUrl } from "./config";
import { HttpError } from "./errors";

export const invalidDpopProof = (description = "The DPoP proof is missing or invalid for this request.") =>
  new HttpError(400, "invalid_dpop_proof", description);

/** The poll's proof, or null when it carries none; throws invalid_dpop_proof for a bad one. */
export async function dpopProof(request: Request, env: Env): Promise<PollProof | null> {
  const header = request.headers.get("DPoP");
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
  return { jkt: checked.jkt, jti: checked.jti };
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
