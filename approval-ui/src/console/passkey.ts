/**
 * Passkey ceremonies through @simplewebauthn/browser (no hand-written WebAuthn encoding): enrolment
 * from an invitation, sign-in with a discoverable credential (no name typed), and the assertion that
 * signs one decision. The server's options say what to sign; the browser only relays.
 */
import { startAuthentication, startRegistration } from "@simplewebauthn/browser";
import type { PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON } from "@simplewebauthn/browser";
import { payloadDigest } from "../../../core/payload-digest";
import { sendJson, type ApiResult, type SessionBody } from "./api";
import type { DecideAnswerBody } from "../../../core/wire";

type Failure = Extract<ApiResult<never>, { ok: false }>;

/** The browser refused or the person cancelled: said plainly, never as a server error. */
function ceremonyFailed(error: unknown): Failure {
  const cancelled = error instanceof Error && (error.name === "NotAllowedError" || error.name === "AbortError");
  return {
    ok: false,
    failure: {
      status: 0,
      error: "passkey_cancelled",
      description: cancelled ? "The passkey prompt was cancelled or timed out. Nothing was changed." : "This browser could not use a passkey here.",
    },
  };
}

export async function enrol(invitation: string): Promise<ApiResult<SessionBody>> {
  const options = await sendJson<{ public_key: PublicKeyCredentialCreationOptionsJSON }>("POST", "/v1/console/enrol/options", { invitation });
  if (!options.ok) return options;
  let webauthn;
  try {
    webauthn = await startRegistration({ optionsJSON: options.value.public_key });
  } catch (error) {
    return ceremonyFailed(error);
  }
  return sendJson<SessionBody>("POST", "/v1/console/enrol", { invitation, webauthn });
}

export async function signIn(): Promise<ApiResult<SessionBody>> {
  const options = await sendJson<{ public_key: PublicKeyCredentialRequestOptionsJSON }>("POST", "/v1/console/sign-in/options", {});
  if (!options.ok) return options;
  let webauthn;
  try {
    webauthn = await startAuthentication({ optionsJSON: options.value.public_key });
  } catch (error) {
    return ceremonyFailed(error);
  }
  return sendJson<SessionBody>("POST", "/v1/console/sign-in", { webauthn });
}

/**
 * Approve or deny one request: the challenge commits to the request, the decision and the SHA-256
 * of the exact JWE sent (README, "Operators and passkeys"), so what the passkey signed is what the
 * agent receives.
 */
export async function decideWithPasskey(
  requestId: string,
  decision: { decision: "deny" } | { decision: "approve"; credential_jwe: string } | { decision: "approve" },
  storedDigest?: string,
): Promise<ApiResult<DecideAnswerBody>> {
  const base = `/v1/console/requests/${encodeURIComponent(requestId)}`;
  // A later approver of a request that needs several sends no credential and signs the stored one's digest.
  const payloadSha256 = "credential_jwe" in decision ? await payloadDigest(decision.credential_jwe) : decision.decision === "approve" ? storedDigest : undefined;
  const challenge = await sendJson<{ public_key: PublicKeyCredentialRequestOptionsJSON }>("POST", `${base}/challenge`, {
    decision: decision.decision,
    ...(payloadSha256 ? { payload_sha256: payloadSha256 } : {}),
  });
  if (!challenge.ok) return challenge;
  let webauthn;
  try {
    webauthn = await startAuthentication({ optionsJSON: challenge.value.public_key });
  } catch (error) {
    return ceremonyFailed(error);
  }
  return sendJson<DecideAnswerBody>("POST", `${base}/decide`, { ...decision, webauthn });
}
