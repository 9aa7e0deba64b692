/**
 * The console's account pages (README, "Console"): the audit log for every operator; agents,
 * operators and notification settings for owners only, each through the same function the admin
 * API calls (worker/account-admin.ts, worker/operators.ts), scoped to the session's own account.
 */
import type { IRequest } from "itty-router";
import {
  MAX_ADMIN_BODY,
  accountJson,
  auditLogOf,
  createAgent as createAgentIn,
  createAgentSchema,
  deleteAgent as deleteAgentOf,
  existing,
  notificationSettingsSchema,
  updateAccountSettings,
} from "../account-admin";
import { consoleActor, consoleReader, consoleWriter, requireOwner } from "../console-access";
import { json, noContent, readJson } from "../http";
import { inviteOperator, listOperators, newOperatorSchema, removeOperator } from "../operators";
import { accountStub } from "../stubs";
import type { AgentListBody, NotificationSettingsBody } from "../../core/wire";

export async function auditLog(request: IRequest, env: Env): Promise<Response> {
  const session = await consoleReader(request, env);
  return json(await auditLogOf(env, session.accountId));
}

export async function listAgents(request: IRequest, env: Env): Promise<Response> {
  const session = await consoleReader(request, env);
  requireOwner(session);
  const { agents } = existing(await accountStub(env, session.accountId).listAgents());
  return json({ agents: agents.map((agent) => ({ agent_id: agent.id, name: agent.name, email: agent.email, created_at: new Date(agent.createdAt).toISOString() })) } satisfies AgentListBody);
}

/** The new key is in this answer only (the page shows it once). */
export async function createAgent(request: IRequest, env: Env): Promise<Response> {
  const session = await consoleWriter(request, env);
  requireOwner(session);
  const body = await readJson(request, createAgentSchema, MAX_ADMIN_BODY);
  return json(await createAgentIn(env, session.accountId, body, consoleActor(session)), 201);
}

export async function deleteAgent(request: IRequest, env: Env): Promise<Response> {
  const session = await consoleWriter(request, env);
  requireOwner(session);
  await deleteAgentOf(env, session.accountId, request.params.agent_id ?? "", consoleActor(session));
  return noContent();
}

export async function getOperators(request: IRequest, env: Env): Promise<Response> {
  const session = await consoleReader(request, env);
  requireOwner(session);
  return json(await listOperators(env, session.accountId));
}

export async function addOperator(request: IRequest, env: Env): Promise<Response> {
  const session = await consoleWriter(request, env);
  requireOwner(session);
  const body = await readJson(request, newOperatorSchema, MAX_ADMIN_BODY);
  return json(await inviteOperator(env, request, session.accountId, body, consoleActor(session)), 201);
}

export async function deleteOperator(request: IRequest, env: Env): Promise<Response> {
  const session = await consoleWriter(request, env);
  requireOwner(session);
  await removeOperator(env, session.accountId, request.params.operator_id ?? "", consoleActor(session));
  return noContent();
}

export async function getSettings(request: IRequest, env: Env): Promise<Response> {
  const session = await consoleReader(request, env);
  requireOwner(session);
  const { account } = existing(await accountStub(env, session.accountId).get());
  const shown = accountJson(account);
  return json({ ...settingsJson(shown), approval_policy: shown.approval_policy } satisfies NotificationSettingsBody);
}

/** Only the notification settings: an unknown field (`operator_email`, say) is refused, not ignored. */
export async function updateSettings(request: IRequest, env: Env): Promise<Response> {
  const session = await consoleWriter(request, env);
  requireOwner(session);
  const body = await readJson(request, notificationSettingsSchema.strict(), MAX_ADMIN_BODY);
  const updated = await updateAccountSettings(env, session.accountId, body, consoleActor(session));
  // The webhook's signing secret, drawn when a URL is set, is shown once, as by the admin API.
  return json({ ...settingsJson(updated), ...(updated.webhook_secret ? { webhook_secret: updated.webhook_secret } : {}) } satisfies NotificationSettingsBody);
}

const settingsJson = (account: NotificationSettingsBody): NotificationSettingsBody => ({
  webhook_url: account.webhook_url,
  webhook_format: account.webhook_format,
});

