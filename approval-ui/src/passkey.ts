/**
 * Signing a decision with the operator's passkey (README, "Operators and passkeys"): a challenge that
 * commits to this request, the decision and the SHA-256 of the exact JWE to be sent (or of the one
 * stored by a first approver under an approval policy), then
 * navigator.credentials.get through @simplewebauthn/browser (user verification required).
 */
import { startAuthentication, type AuthenticationResponseJSON } from "@simplewebauthn/browser";
import { payloadDigest } from "../../core/payload-digest";
import { challenge, type ApiResult, type Decision } from "./api";

export async function signDecision(approvalToken: string, decision: Decision, storedDigest: string | undefined): Promise<ApiResult<AuthenticationResponseJSON>> {
  // A later approver under an approval policy sends no credential and signs the stored one's digest.
  const payloadSha256 = "credential_jwe" in decision ? await payloadDigest(decision.credential_jwe) : decision.decision === "approve" ? storedDigest : undefined;
  const options = await challenge(approvalToken, { decision: decision.decision, ...(payloadSha256 ? { payload_sha256: payloadSha256 } : {}) });
  if (!options.ok) return options;
  try {
    return { ok: true, value: await startAuthentication({ optionsJSON: options.value }) };
  } catch {
    // Cancelled, timed out, or no passkey of this account on this device.
    return { ok: false, failure: { status: 0, error: "passkey_cancelled", description: "", retryAfter: null } };
  }
}
