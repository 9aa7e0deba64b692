/**
 * Operators (README, "Operators and passkeys"): the people who approve for an account, owner or
 * approver, each invited by email to enrol a passkey. Used by the admin API and by the console
 * (owners); the AccountDO keeps them (durable-objects/account/operators.ts).
 *
 * An invitation is `kfi1.<account>.<operator>.<expiry ms>.<secret>.<tag>` (worker/console/signed-fields.ts):
 * single use, 24 h, only its SHA-256 stored. It travels in the URL fragment (`/console#invite=…`),
 * so it stays out of server and proxy logs; the emailed link is built only from PUBLIC_BASE_URL.
 */
import { z } from "zod";
import type { OperatorBody, OperatorInvitedBody, OperatorListBody } from "../core/wire";
import type { Operator, OperatorRole, OperatorWithPasskeys } from "../durable-objects/account/operator-types";
import { baseUrl } from "./config";
import { signFields, verifyFields } from "./console/signed-fields";
import { HttpError, notFound } from "./errors";
import { randomToken, sha256 } from "./hashing";
import { isAccountId, isOperatorId, newOperatorId } from "./ids";
import { accountStub, savedStub } from "./stubs";
import { emailSchema, nameSchema } from "./schemas";

export const INVITATION_TTL_MS = 24 * 60 * 60 * 1000;

export const newOperatorSchema = z.object({
  email: emailSchema,
  name: nameSchema.optional(),
  role: z.enum(["owner", "approver"], { error: 'must be "owner" or "approver"' }).optional(),
});

export const operatorJson = (operator: Operator): OperatorBody => ({
  operator_id: operator.operatorId,
  email: operator.email,
  name: operator.name,
  role: operator.role,
});

/** A new operator, its signed invitation and the invitation's email, ready for the AccountDO. */
export async function newOperator(
  env: Env,
  request: Request,
  accountId: string,
  fields: { email: string; name?: string; role?: OperatorRole },
  existing: Operator | null = null,
  now = Date.now(),
) {
  const operator: Operator = existing ?? { operatorId: newOperatorId(), email: fields.email, name: fields.name ?? fields.email.split("@")[0]!, role: fields.role ?? "approver" };
  const expiresAt = now + INVITATION_TTL_MS;
  const token = await signFields(env, "invitation", [accountId, operator.operatorId, String(expiresAt), randomToken(32)]);
  const publicBase = env.PUBLIC_BASE_URL?.trim().replace(/\/+$/, "");
  const link = (base: string) => `${base}/console#invite=${token}`;
  return {
    input: {
      operator,
      invitationHash: await sha256(token),
      invitationExpiresAt: expiresAt,
      invitationEmail: { subject: "Your Keyferry operator invitation", text: invitationText(accountId, publicBase ? link(publicBase) : null, expiresAt) },
    },
    /** For the admin's (or owner's) own answer: the request's origin serves when PUBLIC_BASE_URL is unset. */
    invitationUrl: link(baseUrl(request, env)),
  };
}

function invitationText(accountId: string, link: string | null, expiresAt: number): string {
  return [
    `You are invited to approve credential requests for Keyferry account ${accountId}.`,
    ``,
    ...(link
      ? [`Open this link on the device you want to use and create a passkey (it works once, until ${new Date(expiresAt).toISOString()}):`, link]
      : [`(No link: this deployment has no PUBLIC_BASE_URL set. Ask its administrator for your invitation link.)`]),
    ``,
    `Every approval you make will be signed with that passkey. If you did not expect this, ignore it.`,
  ].join("\r\n");
}

/**
 * 201 body: the operator plus `invitation_url`. An email that is already an operator's is a
 * re-invitation (a lost passkey's recovery): same operator, a fresh link, earlier links withdrawn.
 * `by` names who invited, for the audit.
 */
export async function inviteOperator(env: Env, request: Request, accountId: string, fields: z.infer<typeof newOperatorSchema>, by: string) {
  const account = accountStub(env, accountId);
  const made = await newOperator(env, request, accountId, fields, await account.operatorByEmail(fields.email));
  const result = await account.addOperator(made.input, by);
  switch (result.reason) {
    case "not_found":
      throw notFound("No such account.");
    case "email_taken":
      throw new HttpError(409, "invalid_request", "email: invited by someone else at this very moment; try again.");
    case "created":
      return { ...operatorJson(result.operator), invitation_url: made.invitationUrl } satisfies OperatorInvitedBody;
  }
}

export async function listOperators(env: Env, accountId: string) {
  const result = await accountStub(env, accountId).listOperators();
  if (result.reason === "not_found") throw notFound("No such account.");
  return { operators: result.operators.map(operatorWithPasskeysJson) } satisfies OperatorListBody;
}

/**
 * Its passkeys, invitations and console sessions stop working at once, and its saved credentials
 * are erased (no one else could ever open them, and they should not outlive the person).
 */
export async function removeOperator(env: Env, accountId: string, operatorId: string, by: string): Promise<void> {
  if (!isOperatorId(operatorId)) throw notFound("No such operator.");
  const result = await accountStub(env, accountId).removeOperator(operatorId, by);
  if (result.reason === "not_found") throw notFound("No such operator.");
  await savedStub(env, accountId, operatorId).erase();
}

const operatorWithPasskeysJson = (operator: OperatorWithPasskeys) => ({
  ...operatorJson(operator),
  passkeys: operator.passkeys.map((p) => ({
    passkey_id: p.passkeyId,
    aaguid: p.aaguid,
    created_at: new Date(p.createdAt).toISOString(),
    last_used_at: p.lastUsedAt === null ? null : new Date(p.lastUsedAt).toISOString(),
  })),
});

/** An invitation of our making, not past its 24 h (the AccountDO checks it is unused); else null. */
export async function verifyInvitation(env: Env, token: string, now = Date.now()): Promise<{ accountId: string; operatorId: string; hash: string } | null> {
  const fields = await verifyFields(env, "invitation", token, 4);
  if (!fields) return null;
  const [accountId, operatorId, expiry] = fields as [string, string, string, string];
  if (!isAccountId(accountId) || !isOperatorId(operatorId) || !(Number(expiry) > now)) return null;
  return { accountId, operatorId, hash: await sha256(token) };
}
