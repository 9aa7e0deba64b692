/**
 * What the admin API and an owner's console both do to an account (README, "A handoff in five
 * requests" and "Console"): one function per change, called by worker/routes/admin.ts after the
 * admin token and by worker/routes/console-owner.ts after an owner's session. `actor` is who the
 * audit log names ("admin", or the operator's email).
 */
import { z } from "zod";
import { newApiKey } from "./auth";
import { allowHttpWebhooks } from "./config";
import { HttpError, badRequest, notFound } from "./errors";
import { randomToken, sha256 } from "./hashing";
import { isAgentId, newAgentId } from "./ids";
import { accountStub, requestStub, vaultStub } from "./stubs";
import { emailSchema, nameSchema } from "./schemas";
import { approvalPolicyJson, approvalPolicySchema } from "./approval-policy-body";
import { isAllowedWebhookUrl } from "./webhook-url";
import type { AccountDetailBody, AccountUpdatedBody, AgentCreatedBody, AuditEventBody, AuditLogBody } from "../core/wire";
import type { Account, AuditRecord } from "../durable-objects/account/account-types";

export const MAX_ADMIN_BODY = 8 * 1024;

export const createAgentSchema = z.object({
  name: nameSchema,
  email: emailSchema.nullable().optional(),
  /** CIBA ping mode (CIBA Core §10.2): where the service says a request was decided. */
  backchannel_client_notification_endpoint: z.string({ error: "must be a string" }).max(2048).optional(),
});

/** The notification settings, which an owner may change from the console too. */
export const notificationSettingsSchema = z.object({
  webhook_url: z.string({ error: "must be a string or null" }).max(2048).nullable().optional(),
  /** README, "Webhooks into a chat tool": the signed Keyferry JSON, or `{"text"}` for Slack-compatible incoming webhooks. */
  webhook_format: z.enum(["keyferry", "slack"], { error: 'must be "keyferry" or "slack"' }).optional(),
});

export const updateAccountSchema = notificationSettingsSchema.extend({ operator_email: emailSchema.optional(), approval_policy: approvalPolicySchema.optional() });

/** Every account RPC but `create` answers `not_found` for an account that does not exist: one 404 for all. */
export function existing<Result extends { reason: string }>(result: Result): Exclude<Result, { reason: "not_found" }> {
  if (result.reason === "not_found") throw notFound("No such account.");
  return result as Exclude<Result, { reason: "not_found" }>;
}

export async function updateAccountSettings(env: Env, accountId: string, body: z.infer<typeof updateAccountSchema>, actor: string): Promise<AccountUpdatedBody> {
  if (typeof body.webhook_url === "string" && !isAllowedWebhookUrl(body.webhook_url, allowHttpWebhooks(env))) {
    throw badRequest("webhook_url: must be an https URL to a public address");
  }
  const updated = existing(
    await accountStub(env, accountId).update(
      {
        ...(body.operator_email !== undefined ? { operatorEmail: body.operator_email } : {}),
        ...(body.webhook_url !== undefined ? { webhookUrl: body.webhook_url } : {}),
        ...(body.webhook_format !== undefined ? { webhookFormat: body.webhook_format } : {}),
        ...(body.approval_policy !== undefined ? { approvalPolicy: body.approval_policy } : {}),
      },
      actor,
    ),
  );
  return { ...accountJson(updated.account), ...(updated.webhookSecret ? { webhook_secret: updated.webhookSecret } : {}) };
}

/** The API key is shown once; only its SHA-256 is stored. */
export async function createAgent(env: Env, accountId: string, body: z.infer<typeof createAgentSchema>, actor: string): Promise<AgentCreatedBody> {
  const pingEndpoint = body.backchannel_client_notification_endpoint ?? null;
  if (pingEndpoint !== null && !isAllowedWebhookUrl(pingEndpoint, allowHttpWebhooks(env))) {
    throw badRequest("backchannel_client_notification_endpoint: must be an https URL to a public address");
  }
  const agentId = newAgentId();
  const apiKey = await newApiKey(env, accountId, agentId, randomToken(32));
  const { agent } = existing(
    await accountStub(env, accountId).addAgent({ agentId, name: body.name, email: body.email ?? null, keyHash: await sha256(apiKey), pingEndpoint }, actor),
  );
  return {
    agent_id: agent.id,
    api_key: apiKey,
    name: agent.name,
    email: agent.email,
    account_id: accountId,
    ...(pingEndpoint ? { backchannel_client_notification_endpoint: pingEndpoint, backchannel_token_delivery_mode: "ping" } : {}),
  };
}

/**
 * The key stops working at once, the agent's active requests end as denied, and its vault is
 * erased. Idempotent: the account keeps what is still to be done (revocations, the vault's purge)
 * until it succeeded, so a failure here answers 503 and the retry finishes the job (rather than a
 * 500, then a 404 with requests left live).
 */
export async function deleteAgent(env: Env, accountId: string, agentId: string, actor: string): Promise<void> {
  if (!isAgentId(agentId)) throw notFound("No such agent.");
  const account = accountStub(env, accountId);
  const result = await account.deleteAgent(agentId, actor);
  if (result.reason === "not_found") throw notFound("No such agent.");
  const revocations = result.activeUserCodes.map((userCode) => requestStub(env, userCode).revoke());
  const [purge, ...outcomes] = await Promise.allSettled([result.purgeVault ? vaultStub(env, agentId).purge() : Promise.resolve(), ...revocations]);
  const revoked = result.activeUserCodes.filter((_, i) => outcomes[i]!.status === "fulfilled");
  await account.revocationsDone(agentId, revoked, purge!.status === "fulfilled");
  if (revoked.length < result.activeUserCodes.length || purge!.status === "rejected") {
    throw new HttpError(
      503,
      "server_error",
      "The agent is deleted, but some of its requests or its vault could not be erased yet; repeat the DELETE.",
      { "Retry-After": "1" },
      `delete of ${agentId}: ${result.activeUserCodes.length - revoked.length} revocation(s) failed, vault purge ${purge!.status}`,
    );
  }
}

export async function auditLogOf(env: Env, accountId: string): Promise<AuditLogBody> {
  const { events } = existing(await accountStub(env, accountId).audit());
  return { events: events.map(auditEventJson) };
}

export const accountJson = (account: Account) =>
  ({
    account_id: account.accountId,
    name: account.name,
    operator_email: account.operatorEmail,
    webhook_url: account.webhookUrl,
    webhook_format: account.webhookFormat,
    created_at: new Date(account.createdAt).toISOString(),
    approval_policy: approvalPolicyJson(account.approvalPolicy),
  }) satisfies AccountDetailBody;

const auditEventJson = (event: AuditRecord) =>
  ({
    at: new Date(event.at).toISOString(),
    type: event.type,
    ...(event.requestId !== undefined ? { request_id: event.requestId } : {}),
    ...(event.agentId !== undefined ? { agent_id: event.agentId } : {}),
    ...(event.actor !== undefined ? { actor: event.actor } : {}),
    ...(event.detail !== undefined ? { detail: event.detail } : {}),
  }) satisfies AuditEventBody;
