/** A request of an account whose owner holds a passkey, looked up by the operator, and the decision's two steps. */
import { base64url } from "jose";
import type { AgentCreatedBody, DecideAnswerBody, PasskeyChallengeAnswerBody } from "../../../core/wire";
import { admin, call, lookupAs, requestCredential, type Answer } from "./api";
import { enrol, newAccountWithOwner } from "./operators";
import { SoftAuthenticator, type AssertOptions } from "./soft-authenticator";

/** An account whose owner enrolled a passkey (the software authenticator), with one agent. */
export async function passkeyAccount(opts: { enrolled?: boolean } = {}) {
  const owner = await newAccountWithOwner();
  const enrolled = opts.enrolled === false ? null : await enrol(owner.invitation);
  const agent = await call<AgentCreatedBody>("POST", `/v1/admin/accounts/${owner.accountId}/agents`, { headers: admin, json: { name: "build-bot" } });
  return { ...owner, authenticator: enrolled?.authenticator ?? new SoftAuthenticator(), apiKey: agent.body.api_key, agentId: agent.body.agent_id };
}

/** A pending request, looked up by code and email: its approval token and the claiming cookie. */
export async function pendingRequest(apiKey: string, operatorEmail: string) {
  const issued = await requestCredential(apiKey);
  const looked = await lookupAs(issued.body.user_code, operatorEmail);
  return { deviceCode: issued.body.device_code, approvalToken: looked.body.approval_token, cookie: looked.cookie!, looked };
}

export const digestOf = async (value: string) => base64url.encode(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value))));

export async function challengeFor(pending: { approvalToken: string; cookie: string }, decision: "approve" | "deny", value?: string) {
  return call<Answer<PasskeyChallengeAnswerBody>>("POST", "/v1/approvals/challenge", {
    headers: { Cookie: pending.cookie },
    json: { approval_token: pending.approvalToken, decision, ...(value !== undefined ? { payload_sha256: await digestOf(value) } : {}) },
  });
}

/** Challenge, sign with `authenticator`: the assertion, not yet sent. */
export async function signDecision(
  pending: { approvalToken: string; cookie: string },
  authenticator: SoftAuthenticator,
  decision: "approve" | "deny",
  value?: string,
  opts: AssertOptions = {},
) {
  const challenge = await challengeFor(pending, decision, value);
  if (challenge.status !== 200) throw new Error(`challenge: ${challenge.status} ${JSON.stringify(challenge.body)}`);
  return authenticator.assert(challenge.body.public_key, opts, authenticator.credentials[0]);
}

export function decideWith(pending: { approvalToken: string; cookie: string }, decision: "approve" | "deny", value: string | undefined, webauthn: unknown) {
  return call<Answer<DecideAnswerBody>>("POST", "/v1/approvals/decide", {
    headers: { Cookie: pending.cookie },
    json: { approval_token: pending.approvalToken, decision, ...(value !== undefined ? { credential_value: value } : {}), ...(webauthn !== undefined ? { webauthn } : {}) },
  });
}
