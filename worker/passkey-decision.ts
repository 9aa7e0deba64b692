/**
 * A decision signed by a passkey (README, "Operators and passkeys"): `challenge` then `decide`, for
 * the approval page (by approval token, worker/routes/approvals.ts) and the console (by request id).
 * The RequestDO issues and consumes the challenge and checks the assertion
 * (durable-objects/request/decision-authority.ts); here are the bodies, the payload's digest and the
 * mapping of the object's reasons to the wire.
 */
import { generateAuthenticationOptions, type AuthenticatorTransport } from "@simplewebauthn/server";
import { base64url, decodeProtectedHeader, type JWK } from "jose";
import { z } from "zod";
import { CREDENTIAL_JWE_ALG, CREDENTIAL_JWE_ENC } from "../core/jwe";
import { MAX_CREDENTIAL_BYTES, MAX_CREDENTIAL_JWE_BYTES } from "../core/limits";
import type { DecideAnswerBody, PasskeyChallengeAnswerBody } from "../core/wire";
import { relyingParty } from "./console/relying-party";
import { authenticationResponseSchema } from "./console/webauthn-schemas";
import { HttpError, badRequest } from "./errors";
import { payloadDigest } from "../core/payload-digest";
import { actorOf, json } from "./http";
import { encryptToKey } from "./request-keys";
import { requestStub } from "./stubs";

/** The request being decided, as the approval token or the console session established it. */
export interface DecisionTarget {
  userCode: string;
  requestId: string;
  /** The approval page's claiming session; null from the console. */
  sessionHash: string | null;
  /** Plain mode's key, to encrypt a `credential_value` to; null where only a JWE is accepted (the console). */
  encryptionKey: JWK | null;
  /** The request is end to end: only `credential_jwe` may carry its credential. */
  endToEnd: boolean;
}

const compactJwe = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const decision = z.enum(["approve", "deny"], { error: 'must be "approve" or "deny"' });

export const challengeFieldsSchema = z.object({
  decision,
  payload_sha256: z
    .string({ error: "must be a string" })
    .regex(/^[A-Za-z0-9_-]{43}$/, "must be the base64url SHA-256 of the exact credential_value or credential_jwe string")
    .optional(),
});

/** The decide body's fields but `approval_token`; refine with `refineDecision`. */
export const decideFieldsShape = {
  decision,
  credential_value: z
    .string({ error: "must be a string" })
    .refine((v) => v.length > 0, "must not be empty")
    .refine((v) => new TextEncoder().encode(v).byteLength <= MAX_CREDENTIAL_BYTES, `must be at most ${MAX_CREDENTIAL_BYTES} bytes`)
    .optional(),
  credential_jwe: z
    .string({ error: "must be a string" })
    .max(MAX_CREDENTIAL_JWE_BYTES, `must be at most ${MAX_CREDENTIAL_JWE_BYTES} bytes`)
    .regex(compactJwe, "must be a compact JWE")
    .refine(hasCredentialJweHeader, `must use alg ${CREDENTIAL_JWE_ALG} and enc ${CREDENTIAL_JWE_ENC}`)
    .optional(),
  webauthn: authenticationResponseSchema.optional(),
};

const ONE_CREDENTIAL = "approve needs exactly one of credential_value or credential_jwe";

/**
 * At most one credential; none is checked by the request, whose later approvers under an approval
 * policy send none (README, "Approval policies (N-of-M)").
 */
export function refineDecision(body: { decision: "approve" | "deny"; credential_value?: string | undefined; credential_jwe?: string | undefined }, ctx: z.RefinementCtx): void {
  const given = Number(body.credential_value !== undefined) + Number(body.credential_jwe !== undefined);
  if (body.decision === "approve" && given > 1) ctx.addIssue({ code: "custom", path: ["credential_value"], message: ONE_CREDENTIAL });
}

export const decideFieldsSchema = z.object(decideFieldsShape).superRefine(refineDecision);

function hasCredentialJweHeader(jwe: string): boolean {
  try {
    const header = decodeProtectedHeader(jwe);
    return header.alg === CREDENTIAL_JWE_ALG && header.enc === CREDENTIAL_JWE_ENC;
  } catch {
    return false;
  }
}

const invalidToken = () => new HttpError(403, "invalid_token", "This approval is no longer valid: it was used or it expired.");

/**
 * 200 `{public_key}`: PublicKeyCredentialRequestOptionsJSON over the account's passkeys, UV required;
 * `onlyPasskey` narrows allowCredentials to one of them (a saved approval, worker/saved-approval.ts).
 */
export async function issueDecisionChallenge(
  env: Env,
  request: Request,
  target: DecisionTarget,
  body: z.infer<typeof challengeFieldsSchema>,
  onlyPasskey?: string,
): Promise<Response> {
  const payloadSha256 = body.payload_sha256 ?? null;
  if (body.decision === "approve" && payloadSha256 === null) throw badRequest("payload_sha256: approving commits to the credential: send the SHA-256 of the exact string");
  if (body.decision === "deny" && payloadSha256 !== null) throw badRequest("payload_sha256: a denial carries no credential");
  const result = await requestStub(env, target.userCode).challenge({ requestId: target.requestId, decision: body.decision, payloadSha256 });
  switch (result.reason) {
    case "invalid_token":
      throw invalidToken();
    case "not_enrolled":
      if (env.REQUIRE_PASSKEY === "true") throw passkeyRequired(false);
      throw badRequest("This account has no passkey yet: its decisions are made without one (the email binding).");
    case "ok": {
      const allowed = result.allowCredentials.filter((c) => onlyPasskey === undefined || c.id === onlyPasskey);
      if (allowed.length === 0) throw new HttpError(403, "access_denied", "That passkey is no longer one of this account's.");
      const options = await generateAuthenticationOptions({
        rpID: relyingParty(request, env).rpId,
        challenge: new Uint8Array(base64url.decode(result.challenge)),
        allowCredentials: allowed.map((c) => ({ id: c.id, transports: c.transports as AuthenticatorTransport[] })),
        userVerification: "required",
        timeout: 5 * 60 * 1000,
      });
      return json({ public_key: options } satisfies PasskeyChallengeAnswerBody);
    }
  }
}

/**
 * 200 `{status}`; the refusals of the contract, each changing nothing. `committed` replaces the
 * digest of the sent payload as what the challenge must have committed to (a saved approval's
 * commitment, worker/saved-approval.ts).
 */
export async function decideRequest(
  env: Env,
  request: Request,
  target: DecisionTarget,
  body: z.infer<typeof decideFieldsSchema>,
  committed?: string,
): Promise<Response> {
  // The page and the contract promise that an end-to-end credential never reaches the service.
  if (target.endToEnd && body.credential_value !== undefined) {
    throw badRequest("credential_value: this request is end-to-end encrypted; send credential_jwe, encrypted in the browser to its public_key");
  }
  if (target.encryptionKey === null && body.credential_value !== undefined) throw badRequest("credential_value: send credential_jwe, encrypted in the browser");
  let payload: string | null = null;
  let payloadSha256: string | null = null;
  const sent = body.decision === "approve" ? (body.credential_jwe ?? body.credential_value) : undefined;
  if (sent !== undefined) {
    payloadSha256 = committed ?? (await payloadDigest(sent));
    payload = body.credential_jwe ?? (await encryptToKey(sent, target.encryptionKey!));
  }
  const result = await requestStub(env, target.userCode).decide({
    sessionHash: target.sessionHash,
    decision: body.decision,
    payload,
    payloadSha256,
    webauthn: body.webauthn ?? null,
    party: relyingParty(request, env),
    actor: actorOf(request),
    requestId: target.requestId,
  });
  switch (result.reason) {
    case "invalid_token":
      throw invalidToken();
    case "passkey_required":
      throw passkeyRequired(result.enrolled);
    case "access_denied":
      throw new HttpError(403, "access_denied", "The passkey assertion does not sign this decision: ask for a new challenge and try again.");
    case "approved":
    case "denied":
      return json({ status: result.reason } satisfies DecideAnswerBody);
    case "awaiting_approvals":
      return json({ status: result.reason, approvals: result.approvals, required: result.required } satisfies DecideAnswerBody);
    case "already_approved":
      throw new HttpError(409, "already_approved", "You have already approved this request; it waits for other operators.");
    case "credential_required":
      throw badRequest(`credential_value: ${ONE_CREDENTIAL}`);
    case "credential_not_expected":
      throw badRequest("credential_jwe: this request already holds the first approver's credential; approve it without one (your passkey signs its payload_sha256)");
    case "policy_needs_passkeys":
      throw new HttpError(
        403,
        "passkey_required",
        `This request needs ${result.required} operators' approvals, each signed with their own passkey; no operator of this account has one yet. It can still be denied.`,
      );
  }
}

/** 401 when the account has a passkey and none was used; 403 when the deployment requires one and the account has none. */
const passkeyRequired = (enrolled: boolean) =>
  enrolled
    ? new HttpError(401, "passkey_required", "This account's decisions are signed with an operator's passkey: ask for a challenge and sign it.")
    : new HttpError(403, "passkey_required", "This deployment requires a passkey for every decision, and no operator of this account has enrolled one.");
