/** The admin API (README, "A handoff in five requests" and "Contract notes"): accounts, agents and their keys, settings, the audit log. */
import type { IRequest } from "itty-router";
import { z } from "zod";
import { newApiKey, requireAdmin } from "../auth";
import { allowHttpWebhooks } from "../config";
import { HttpError, badRequest, notFound } from "../errors";
import { randomToken, sha256 } from "../hashing";
import { isAccountId, isAgentId, newAccountId, newAgentId } from "../ids";
import { json, noContent, readJson } from "../http";
import { accountStub, requestStub, vaultStub } from "../stubs";
import { emailSchema, nameSchema } from "../schemas";
import { isAllowedWebhookUrl } from "../webhook-url";
import { inviteOperator, listOperators, newOperator, newOperatorSchema, removeOperator } from "../operators";
import type { AccountBody, AccountDetailBody, AccountUpdatedBody, AgentCreatedBody, AuditEventBody, AuditLogBody } from "../../core/wire";
import type { Account, AuditRecord } from "../../durable-objects/account/account-types";

const MAX_ADMIN_BODY = 8 * 1024;

const createAccountSchema = z.object({ name: nameSchema, operator_email: emailSchema });
const createAgentSchema = z.object({
  name: nameSchema,
  email: emailSchema.nullable().optional(),
  /** CIBA ping mode (CIBA Core §10.2): where the service says a request was decided. */
  backchannel_client_notification_endpoint: z.string({ error: "must be a string" }).max(2048).optional(),
});
const updateAccountSchema = z.object({
  operator_email: emailSchema.optional(),
  webhook_url: z.string({ error: "must be a string or null" }).max(2048).nullable().optional(),
  /** README, "Webhooks into a chat tool": the signed Keyferry JSON, or `{"text"}` for Slack-compatible incoming webhooks. */
  webhook_format: z.enum(["keyferry", "slack"], { error: 'must be "keyferry" or "slack"' }).optional(),
});

function accountIdParam(request: IRequest): string {
  const accountId = request.params.account_id ?? "";
  if (!isAccountId(accountId)) throw notFound("No such account.");
  return accountId;
}

export async function createAccount(request: IRequest, env: Env): Promise<Response> {
  await requireAdmin(request, env);
  const body = await readJson(request, createAccountSchema, MAX_ADMIN_BODY);
  const accountId = newAccountId();
  // The first operator, the owner, is invited at once (README, "Operators and passkeys").
  const owner = await newOperator(env, request, accountId, { email: body.operator_email, role: "owner" });
  const account = await accountStub(env, accountId).create({ accountId, name: body.name, operatorEmail: body.operator_email, owner: owner.input });
  return json(
    {
      account_id: account.accountId,
      name: account.name,
      operator_email: account.operatorEmail,
      operator_id: owner.input.operator.operatorId,
      invitation_url: owner.invitationUrl,
    } satisfies AccountBody,
    201,
  );
}

export async function createOperator(request: IRequest, env: Env): Promise<Response> {
  await requireAdmin(request, env);
  const accountId = accountIdParam(request);
  const body = await readJson(request, newOperatorSchema, MAX_ADMIN_BODY);
  return json(await inviteOperator(env, request, accountId, body, "admin"), 201);
}

export async function getOperators(request: IRequest, env: Env): Promise<Response> {
  await requireAdmin(request, env);
  return json(await listOperators(env, accountIdParam(request)));
}

export async function deleteOperator(request: IRequest, env: Env): Promise<Response> {
  await requireAdmin(request, env);
  await removeOperator(env, accountIdParam(request), request.params.operator_id ?? "", "admin");
  return noContent();
}

export async function getAccount(request: IRequest, env: Env): Promise<Response> {
  await requireAdmin(request, env);
  const { account } = existing(await accountStub(env, accountIdParam(request)).get());
  return json(accountJson(account));
}

export async function updateAccount(request: IRequest, env: Env): Promise<Response> {
  await requireAdmin(request, env);
  const accountId = accountIdParam(request);
  const body = await readJson(request, updateAccountSchema, MAX_ADMIN_BODY);
  if (typeof body.webhook_url === "string" && !isAllowedWebhookUrl(body.webhook_url, allowHttpWebhooks(env))) {
    throw badRequest("webhook_url: must be an https URL to a public address");
  }
  const updated = existing(
    await accountStub(env, accountId).update({
      ...(body.operator_email !== undefined ? { operatorEmail: body.operator_email } : {}),
      ...(body.webhook_url !== undefined ? { webhookUrl: body.webhook_url } : {}),
      ...(body.webhook_format !== undefined ? { webhookFormat: body.webhook_format } : {}),
    }),
  );
  return json({ ...accountJson(updated.account), ...(updated.webhookSecret ? { webhook_secret: updated.webhookSecret } : {}) } satisfies AccountUpdatedBody);
}

/** The API key is shown once; only its SHA-256 is stored. */
export async function createAgent(request: IRequest, env: Env): Promise<Response> {
  await requireAdmin(request, env);
  const accountId = accountIdParam(request);
  const body = await readJson(request, createAgentSchema, MAX_ADMIN_BODY);
  const pingEndpoint = body.backchannel_client_notification_endpoint ?? null;
  if (pingEndpoint !== null && !isAllowedWebhookUrl(pingEndpoint, allowHttpWebhooks(env))) {
    throw badRequest("backchannel_client_notification_endpoint: must be an https URL to a public address");
  }
  const agentId = newAgentId();
  const apiKey = await newApiKey(env, accountId, agentId, randomToken(32));
  const { agent } = existing(await accountStub(env, accountId).addAgent({ agentId, name: body.name, email: body.email ?? null, keyHash: await sha256(apiKey), pingEndpoint }));
  return json(
    {
      agent_id: agent.id,
      api_key: apiKey,
      name: agent.name,
      email: agent.email,
      account_id: accountId,
      ...(pingEndpoint ? { backchannel_client_notification_endpoint: pingEndpoint, backchannel_token_delivery_mode: "ping" } : {}),
    } satisfies AgentCreatedBody,
    201,
  );
}

/**
 * The key stops working at once, the agent's active requests end as denied, and its vault is
 * erased. Idempotent: the account keeps what is still to be done (revocations, the vault's purge)
 * until it succeeded, so a failure here answers 503 and the retry finishes the job (rather than a
 * 500, then a 404 with requests left live).
 */
export async function deleteAgent(request: IRequest, env: Env): Promise<Response> {
  await requireAdmin(request, env);
  const accountId = accountIdParam(request);
  const agentId = request.params.agent_id ?? "";
  if (!isAgentId(agentId)) throw notFound("No such agent.");
  const account = accountStub(env, accountId);
  const result = await account.deleteAgent(agentId);
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
  return noContent();
}

export async function auditLog(request: IRequest, env: Env): Promise<Response> {
  await requireAdmin(request, env);
  const { events } = existing(await accountStub(env, accountIdParam(request)).audit());
  return json({ events: events.map(auditEventJson) } satisfies AuditLogBody);
}

/** Every admin RPC but `create` answers `not_found` for an account that does not exist: one 404 for all. */
function existing<Result extends { reason: string }>(result: Result): Exclude<Result, { reason: "not_found" }> {
  if (result.reason === "not_found") throw notFound("No such account.");
  return result as Exclude<Result, { reason: "not_found" }>;
}

const accountJson = (account: Account) =>
  ({
    account_id: account.accountId,
    name: account.name,
    operator_email: account.operatorEmail,
    webhook_url: account.webhookUrl,
    webhook_format: account.webhookFormat,
    created_at: new Date(account.createdAt).toISOString(),
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
