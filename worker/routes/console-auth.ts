/**
 * Operators' passkeys and console sign-in (README, "Operators and passkeys"): enrolment from an
 * invitation (WebAuthn L3 §7.1, a discoverable credential with user verification) and sign-in
 * with a discoverable credential, no name typed (§7.2). The ceremonies are checked by
 * @simplewebauthn/server in the AccountDO (core/webauthn.ts); the worker signs the session cookie.
 */
import { generateAuthenticationOptions, generateRegistrationOptions } from "@simplewebauthn/server";
import type { IRequest } from "itty-router";
import { base64url } from "jose";
import { z } from "zod";
import { SUPPORTED_ALGORITHMS, challengeOf } from "../../core/webauthn";
import type { ConsoleSessionBody, EnrolledBody, EnrolOptionsBody, PasskeyChallengeAnswerBody } from "../../core/wire";
import { relyingParty, RP_NAME } from "../console/relying-party";
import { clearConsoleCookie, consoleCookie, newConsoleSession, requireConsoleSession, requireSameOrigin, requireSameOriginJson } from "../console/session";
import { signFields, signUserHandle, verifyFields, verifyUserHandle } from "../console/signed-fields";
import { MAX_WEBAUTHN_BODY, authenticationResponseSchema, registrationResponseSchema } from "../console/webauthn-schemas";
import { HttpError } from "../errors";
import { randomToken } from "../hashing";
import { json, noContent, readJson } from "../http";
import { operatorJson, verifyInvitation } from "../operators";
import { accountStub } from "../stubs";
import type { Operator } from "../../durable-objects/account/operator-types";

/** How long the browser may take over a ceremony (WebAuthn `timeout`), and a sign-in challenge lives. */
const CEREMONY_MS = 5 * 60 * 1000;
const MAX_SMALL_BODY = 2 * 1024;

const invitationField = z.string({ error: "must be a string" }).max(512, "must be at most 512 characters");
const enrolOptionsSchema = z.object({ invitation: invitationField });
const enrolSchema = z.object({ invitation: invitationField, webauthn: registrationResponseSchema });
const signInSchema = z.object({ webauthn: authenticationResponseSchema });

const invalidInvitation = (internal: string) =>
  new HttpError(403, "invalid_token", "This invitation is not valid: it was used, it expired or it was withdrawn. Ask an owner or the admin for a new one.", {}, internal);
const refused = (internal: string) => new HttpError(403, "access_denied", "The passkey could not be verified.", {}, internal);

const signedIn = (accountId: string, operator: Operator, expiresAt: number): ConsoleSessionBody => ({
  operator: operatorJson(operator),
  account_id: accountId,
  expires_at: new Date(expiresAt).toISOString(),
});

/** Registration options for an invitation; opening the invitation changes nothing but this challenge. */
export async function enrolOptions(request: IRequest, env: Env): Promise<Response> {
  requireSameOriginJson(request, env);
  const body = await readJson(request, enrolOptionsSchema, MAX_SMALL_BODY);
  const invitation = await verifyInvitation(env, body.invitation);
  if (!invitation) throw invalidInvitation("forged, malformed or past 24 h");
  const party = relyingParty(request, env);
  const challenge = crypto.getRandomValues(new Uint8Array(32));
  const begun = await accountStub(env, invitation.accountId).beginEnrolment(invitation.operatorId, invitation.hash, base64url.encode(challenge));
  if (begun.reason !== "ok") throw invalidInvitation("used, withdrawn or its operator removed");
  const options = await generateRegistrationOptions({
    rpName: RP_NAME,
    rpID: party.rpId,
    userName: begun.operator.email,
    userDisplayName: begun.operator.name,
    userID: await signUserHandle(env, invitation.accountId, invitation.operatorId),
    challenge,
    timeout: CEREMONY_MS,
    attestationType: "none",
    excludeCredentials: begun.excludeCredentialIds.map((id) => ({ id })),
    authenticatorSelection: { residentKey: "required", requireResidentKey: true, userVerification: "required" },
    supportedAlgorithmIDs: SUPPORTED_ALGORITHMS,
    // WebAuthn L3 §10.1.4: asks the authenticator to enable its PRF (CTAP2 hmac-secret), which
    // saved credentials are sealed with (README, "Saved credentials"); one without it still enrols.
    extensions: { prf: {} },
  });
  return json({ public_key: options, operator: operatorJson(begun.operator) } satisfies EnrolOptionsBody);
}

/** Verifies the new passkey, consumes the invitation and signs the operator in. */
export async function enrol(request: IRequest, env: Env): Promise<Response> {
  requireSameOriginJson(request, env);
  const body = await readJson(request, enrolSchema, MAX_WEBAUTHN_BODY);
  const invitation = await verifyInvitation(env, body.invitation);
  if (!invitation) throw invalidInvitation("forged, malformed or past 24 h");
  const opening = await newConsoleSession(env, invitation.accountId, invitation.operatorId);
  const result = await accountStub(env, invitation.accountId).completeEnrolment({
    operatorId: invitation.operatorId,
    invitationHash: invitation.hash,
    response: body.webauthn,
    party: relyingParty(request, env),
    session: opening.session,
  });
  switch (result.reason) {
    case "invalid_invitation":
      throw invalidInvitation("used, withdrawn, or no challenge was issued");
    case "refused":
      throw refused(`enrolment: ${result.detail}`);
    case "enrolled":
      return json({ ...signedIn(invitation.accountId, result.operator, opening.session.expiresAt), passkey_id: result.passkeyId } satisfies EnrolledBody, 201, { "Set-Cookie": opening.setCookie });
  }
}

/**
 * Options for a discoverable-credential sign-in (no allowCredentials: the authenticator offers the
 * operator's passkeys for this RP). The challenge is signed rather than stored, so asking for one
 * writes nothing; the account object remembers it once it has signed someone in.
 */
export async function signInOptions(request: IRequest, env: Env): Promise<Response> {
  requireSameOriginJson(request, env);
  await readJson(request, z.object({}), MAX_SMALL_BODY);
  const challenge = await signFields(env, "sign_in_challenge", [String(Date.now() + CEREMONY_MS), randomToken(16)]);
  const options = await generateAuthenticationOptions({
    rpID: relyingParty(request, env).rpId,
    challenge: new Uint8Array(new TextEncoder().encode(challenge)),
    userVerification: "required",
    timeout: CEREMONY_MS,
    allowCredentials: [],
  });
  return json({ public_key: options } satisfies PasskeyChallengeAnswerBody);
}

export async function signIn(request: IRequest, env: Env): Promise<Response> {
  requireSameOriginJson(request, env);
  const { webauthn } = await readJson(request, signInSchema, MAX_WEBAUTHN_BODY);
  const challenge = await signInChallenge(env, webauthn);
  if (!challenge) throw refused("sign-in: challenge forged, malformed or expired");
  const user = webauthn.response.userHandle ? await verifyUserHandle(env, webauthn.response.userHandle) : null;
  if (!user) throw refused("sign-in: no user handle of ours (not a Keyferry passkey, or not discoverable)");
  const opening = await newConsoleSession(env, user.accountId, user.operatorId);
  const result = await accountStub(env, user.accountId).signIn({
    operatorId: user.operatorId,
    response: webauthn,
    challenge,
    party: relyingParty(request, env),
    session: opening.session,
  });
  if (result.reason !== "signed_in") throw refused(`sign-in: ${result.detail}`);
  return json(signedIn(user.accountId, result.operator, opening.session.expiresAt), 200, { "Set-Cookie": opening.setCookie });
}

/** The signed challenge the assertion's clientDataJSON carries, if it is ours and unexpired. */
async function signInChallenge(env: Env, webauthn: { response: { clientDataJSON: string } }): Promise<{ value: string; expiresAt: number } | null> {
  const value = challengeOf(webauthn);
  if (!value || value.length > 512) return null;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(base64url.decode(value));
  } catch {
    return null;
  }
  const fields = await verifyFields(env, "sign_in_challenge", text, 2);
  const expiresAt = fields ? Number(fields[0]) : 0;
  return expiresAt > Date.now() ? { value, expiresAt } : null;
}

export async function currentSession(request: IRequest, env: Env): Promise<Response> {
  const session = await requireConsoleSession(request, env);
  return json(signedIn(session.accountId, session.operator, session.expiresAt));
}

/** Signing out ends the session in the account object, not only in this browser. */
export async function signOut(request: IRequest, env: Env): Promise<Response> {
  requireSameOrigin(request, env);
  const cookie = await consoleCookie(request, env);
  if (cookie) await accountStub(env, cookie.accountId).endConsoleSession(cookie.sessionHash);
  const response = noContent();
  response.headers.set("Set-Cookie", clearConsoleCookie);
  return response;
}
