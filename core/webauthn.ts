/**
 * WebAuthn ceremonies checked by @simplewebauthn/server (W3C WebAuthn Level 3 §7.1 registration,
 * §7.2 assertion): no CBOR, COSE or attestation parsing of our own. Pure: the caller passes the
 * expected challenge, origin and RP ID and the stored credential; nothing here stores or reads.
 * Results are tagged by `reason`; the library's own message goes to `detail`, for the log only.
 */
import { verifyAuthenticationResponse, verifyRegistrationResponse } from "@simplewebauthn/server";
import type { AuthenticationResponseJSON, AuthenticatorTransport, RegistrationResponseJSON } from "@simplewebauthn/server";
import { base64url } from "jose";

export type { AuthenticationResponseJSON, RegistrationResponseJSON } from "@simplewebauthn/server";

/** Who relies on the passkeys: RP ID = the public origin's host (§5.1.3 rp.id), origin = that origin. */
export interface RelyingParty {
  rpId: string;
  origin: string;
}

/** ES256 and RS256 (COSE -7, -257): what platform authenticators and security keys make. */
export const SUPPORTED_ALGORITHMS = [-7, -257];

/** A passkey as stored: the COSE public key as base64url, its signature counter and transports. */
export interface StoredCredential {
  credentialId: string;
  publicKey: string;
  counter: number;
  transports: string[];
}

export type EnrolmentResult =
  | { reason: "ok"; credential: StoredCredential; aaguid: string }
  | { reason: "refused"; detail: string };

/** §7.1 with user verification and a discoverable credential required (the options asked for both). */
export async function verifyEnrolment(response: RegistrationResponseJSON, expectedChallenge: string, party: RelyingParty): Promise<EnrolmentResult> {
  try {
    const result = await verifyRegistrationResponse({
      ...expected(response, expectedChallenge, party),
      requireUserVerification: true,
      supportedAlgorithmIDs: SUPPORTED_ALGORITHMS,
    });
    if (!result.verified) return { reason: "refused", detail: "registration not verified" };
    const { credential, aaguid } = result.registrationInfo;
    return {
      reason: "ok",
      aaguid,
      credential: {
        credentialId: credential.id,
        publicKey: base64url.encode(credential.publicKey),
        counter: credential.counter,
        transports: credential.transports ?? response.response.transports ?? [],
      },
    };
  } catch (error) {
    return { reason: "refused", detail: messageOf(error) };
  }
}

export type AssertionResult =
  | { reason: "ok"; newCounter: number; userVerified: boolean }
  | { reason: "counter_regression"; detail: string }
  | { reason: "refused"; detail: string };

/**
 * §7.2: signature, challenge, origin, RP ID and the counter (step 21: a counter that did not grow,
 * where the authenticator keeps one, may mean a cloned key). User verification is *not* required
 * here: the caller decides what an unverified assertion is worth (core/request-state.ts refuses it
 * for a decision), so that rule has one home.
 */
export async function verifyAssertion(
  response: AuthenticationResponseJSON,
  expectedChallenge: string,
  party: RelyingParty,
  stored: StoredCredential,
): Promise<AssertionResult> {
  try {
    const result = await verifyAuthenticationResponse({
      ...expected(response, expectedChallenge, party),
      requireUserVerification: false,
      credential: {
        id: stored.credentialId,
        publicKey: new Uint8Array(base64url.decode(stored.publicKey)),
        counter: stored.counter,
        transports: stored.transports as AuthenticatorTransport[],
      },
    });
    if (!result.verified) return { reason: "refused", detail: "assertion not verified" };
    return { reason: "ok", newCounter: result.authenticationInfo.newCounter, userVerified: result.authenticationInfo.userVerified };
  } catch (error) {
    const detail = messageOf(error);
    return /counter/i.test(detail) ? { reason: "counter_regression", detail } : { reason: "refused", detail };
  }
}

/** The challenge a response's clientDataJSON carries (base64url), or null if it has none. */
export function challengeOf(response: { response: { clientDataJSON: string } }): string | null {
  try {
    const clientData: unknown = JSON.parse(new TextDecoder().decode(base64url.decode(response.response.clientDataJSON)));
    const challenge = typeof clientData === "object" && clientData !== null ? (clientData as { challenge?: unknown }).challenge : undefined;
    return typeof challenge === "string" ? challenge : null;
  } catch {
    return null;
  }
}

const expected = <R>(response: R, expectedChallenge: string, party: RelyingParty) => ({ response, expectedChallenge, expectedOrigin: party.origin, expectedRPID: party.rpId });

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error)).slice(0, 300);
