/**
 * An account whose owner and one approver each hold a passkey (the software authenticator) and a
 * console session, with one agent and an approval policy; and the console's approve and deny, as
 * the page makes them (README, "Approval policies (N-of-M)").
 */
import type { AccountUpdatedBody, AgentCreatedBody, ConsoleRequestBody, ConsoleRequestsBody, DecideAnswerBody, OperatorInvitedBody, PasskeyChallengeAnswerBody } from "../../../core/wire";
import { admin, call, type Answer } from "./api";
import { consoleHeaders, enrol, invitationOf, newAccountWithOwner } from "./operators";
import { digestOf } from "./passkey-decisions";
import type { SoftAuthenticator } from "./soft-authenticator";

export interface ConsoleOperator {
  operatorId: string;
  email: string;
  cookie: string;
  authenticator: SoftAuthenticator;
}

export async function policyAccount(policy: Record<string, unknown> | null = { approvals_required: 2 }) {
  const owner = await newAccountWithOwner();
  const ownerEnrolled = await enrol(owner.invitation);
  const approverEmail = `approver-${crypto.randomUUID()}@example.com`;
  const invited = await call<Answer<OperatorInvitedBody>>("POST", `/v1/admin/accounts/${owner.accountId}/operators`, { headers: admin, json: { email: approverEmail } });
  const approverEnrolled = await enrol(invitationOf(invited.body.invitation_url));
  const agent = await call<AgentCreatedBody>("POST", `/v1/admin/accounts/${owner.accountId}/agents`, { headers: admin, json: { name: "build-bot" } });
  if (policy) {
    const patched = await setPolicy(owner.accountId, policy);
    if (patched.status !== 200) throw new Error(`policy: ${patched.status} ${JSON.stringify(patched.body)}`);
  }
  const operators: [ConsoleOperator, ConsoleOperator] = [
    { operatorId: owner.operatorId, email: owner.email, cookie: ownerEnrolled.cookie!, authenticator: ownerEnrolled.authenticator },
    { operatorId: invited.body.operator_id, email: approverEmail, cookie: approverEnrolled.cookie!, authenticator: approverEnrolled.authenticator },
  ];
  return { accountId: owner.accountId, apiKey: agent.body.api_key, operators };
}

export const setPolicy = (accountId: string, policy: unknown) =>
  call<Answer<AccountUpdatedBody>>("PATCH", `/v1/admin/accounts/${accountId}`, { headers: admin, json: { approval_policy: policy } });

/** The request as `operator`'s console lists it. */
export async function listed(operator: ConsoleOperator, vaultKey = "stripe-sk"): Promise<ConsoleRequestBody | undefined> {
  const list = await call<ConsoleRequestsBody>("GET", "/v1/console/requests", { headers: consoleHeaders(operator.cookie) });
  return list.body.requests.find((r) => r.vault_key === vaultKey);
}

/**
 * Approve from the console: with `value` (the first approver: the challenge commits to its digest),
 * or without (a later approver: the challenge commits to `payloadSha256`, by default the one listed).
 */
export async function consoleApprove(operator: ConsoleOperator, requestId: string, opts: { value?: string; payloadSha256?: string } = {}) {
  const payloadSha256 = opts.payloadSha256 ?? (opts.value !== undefined ? await digestOf(opts.value) : (await listedById(operator, requestId))?.payload_sha256);
  const base = `/v1/console/requests/${requestId}`;
  const challenge = await call<Answer<PasskeyChallengeAnswerBody>>("POST", `${base}/challenge`, { headers: consoleHeaders(operator.cookie), json: { decision: "approve", payload_sha256: payloadSha256 } });
  if (challenge.status !== 200) throw new Error(`challenge: ${challenge.status} ${JSON.stringify(challenge.body)}`);
  const webauthn = await operator.authenticator.assert(challenge.body.public_key);
  return call<Answer<DecideAnswerBody>>("POST", `${base}/decide`, {
    headers: consoleHeaders(operator.cookie),
    json: { decision: "approve", ...(opts.value !== undefined ? { credential_value: opts.value } : {}), webauthn },
  });
}

export async function consoleDeny(operator: ConsoleOperator, requestId: string) {
  const base = `/v1/console/requests/${requestId}`;
  const challenge = await call<Answer<PasskeyChallengeAnswerBody>>("POST", `${base}/challenge`, { headers: consoleHeaders(operator.cookie), json: { decision: "deny" } });
  const webauthn = await operator.authenticator.assert(challenge.body.public_key);
  return call<Answer<DecideAnswerBody>>("POST", `${base}/decide`, { headers: consoleHeaders(operator.cookie), json: { decision: "deny", webauthn } });
}

async function listedById(operator: ConsoleOperator, requestId: string) {
  const list = await call<ConsoleRequestsBody>("GET", "/v1/console/requests", { headers: consoleHeaders(operator.cookie) });
  return list.body.requests.find((r) => r.request_id === requestId);
}
