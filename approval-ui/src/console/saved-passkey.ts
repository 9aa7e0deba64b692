/**
 * The passkey ceremonies of saved credentials (README, "Saved credentials"): each is one
 * `navigator.credentials.get` (through @simplewebauthn/browser, which passes `extensions` through)
 * that also evaluates the passkey's PRF (WebAuthn L3 §10.1.4) at the item's `prf_salt`. The PRF
 * output is key material: it is read here and removed from the assertion before anything is sent.
 */
import { startAuthentication, type AuthenticationResponseJSON, type PublicKeyCredentialRequestOptionsJSON } from "@simplewebauthn/browser";
import { base64url } from "jose";
import { CREDENTIAL_JWE_ALG } from "../../../core/jwe";
import type { DecideAnswerBody, SavedCredentialBody } from "../../../core/wire";
import { encryptCredential } from "../encrypt";
import { newPrfSalt, prfInput, seal, sealingKey, unseal } from "../saved-seal";
import { getJson, sendJson, type ApiResult, type ConsoleRequestBody } from "./api";

type Failure = Extract<ApiResult<never>, { ok: false }>;
const failure = (error: string, description: string): Failure => ({ ok: false, failure: { status: 0, error, description } });

/** Why a passkey without PRF falls back to typing (said on the page, README, "Saved credentials"). */
export const NO_PRF =
  "Your passkey (or this browser) does not support the WebAuthn PRF extension, so it cannot seal or open saved credentials. Nothing was sent. Type the credential and press Approve instead.";

/** One assertion with the PRF evaluated at `prfSalt`; the assertion as sent (no extension results) and the PRF output, if any. */
async function assertWithPrf(optionsJSON: PublicKeyCredentialRequestOptionsJSON, prfSalt: string): Promise<{ webauthn: AuthenticationResponseJSON; prf: BufferSource | null } | Failure> {
  let response: AuthenticationResponseJSON;
  try {
    response = await startAuthentication({ optionsJSON: { ...optionsJSON, extensions: { ...optionsJSON.extensions, prf: { eval: { first: prfInput(prfSalt) } } } } });
  } catch (error) {
    const cancelled = error instanceof Error && (error.name === "NotAllowedError" || error.name === "AbortError");
    return failure("passkey_cancelled", cancelled ? "The passkey prompt was cancelled or timed out. Nothing was sent." : "This browser could not use a passkey here.");
  }
  const results = response.clientExtensionResults as { prf?: { results?: { first?: BufferSource } } };
  return { webauthn: { ...response, clientExtensionResults: {} }, prf: results.prf?.results?.first ?? null };
}

/**
 * Seals `value` under `name` with a passkey the operator picks (a local ceremony: its challenge is
 * random and never sent; the session cookie authorizes the PUT, which checks the passkey is theirs).
 */
export async function saveCredential(name: string, value: string): Promise<ApiResult<void>> {
  const prfSalt = newPrfSalt();
  const challenge = base64url.encode(crypto.getRandomValues(new Uint8Array(32)));
  const asserted = await assertWithPrf({ challenge, rpId: location.hostname, userVerification: "required", allowCredentials: [] }, prfSalt);
  if ("ok" in asserted) return asserted;
  if (!asserted.prf) return failure("prf_unsupported", NO_PRF);
  const jwe = await seal(value, await sealingKey(asserted.prf, name));
  return sendJson<void>("PUT", `/v1/console/saved/${encodeURIComponent(name)}`, { jwe, passkey_id: asserted.webauthn.id, prf_salt: prfSalt });
}

/**
 * One touch: the challenge commits to the stored item and names its passkey; the same assertion
 * gives the PRF output that opens the item here; the value is encrypted to the request's key (the
 * agent's own in end-to-end mode) and only then is the decision sent. If the item does not open,
 * nothing is sent.
 */
export async function approveWithSaved(request: ConsoleRequestBody, name: string): Promise<ApiResult<DecideAnswerBody>> {
  const item = await getJson<SavedCredentialBody>(`/v1/console/saved/${encodeURIComponent(name)}`);
  if (!item.ok) return item;
  const base = `/v1/console/requests/${encodeURIComponent(request.request_id)}`;
  const challenge = await sendJson<{ public_key: PublicKeyCredentialRequestOptionsJSON }>("POST", `${base}/challenge`, { decision: "approve", saved: name });
  if (!challenge.ok) return challenge;
  const asserted = await assertWithPrf(challenge.value.public_key, item.value.prf_salt);
  if ("ok" in asserted) return asserted;
  if (!asserted.prf) return failure("prf_unsupported", NO_PRF);
  const value = await unseal(item.value.jwe, await sealingKey(asserted.prf, name));
  if (value === null) return failure("cannot_open", `This passkey cannot open the saved credential "${name}": it was sealed by another passkey, or changed. Nothing was sent.`);
  let credentialJwe: string;
  try {
    credentialJwe = await encryptCredential(value, request.encryption_key);
  } catch {
    return failure("encrypt_failed", `This browser could not encrypt the credential (${CREDENTIAL_JWE_ALG}).`);
  }
  return sendJson<DecideAnswerBody>("POST", `${base}/decide`, { decision: "approve", credential_jwe: credentialJwe, webauthn: asserted.webauthn, saved: name });
}
