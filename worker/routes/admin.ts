/** The admin API (README, "A handoff in five requests" and "Contract notes"): accounts, agents and their keys, settings, the audit log. */
import type { IRequest } from "itty-router";
import { z } from "zod";
import { requireAdmin } from "../auth";
import { notFound } from "../errors";
import { isAccountId, newAccountId } from "../ids";
import { json, noContent, readJson } from "../http";
import { accountStub } from "../stubs";
import { inviteOperator, listOperators, newOperator, newOperatorSchema, removeOperator } from "../operators";
import { emailSchema, nameSchema } from "../schemas";
import {
  MAX_ADMIN_BODY,
  accountJson,
  auditLogOf,
  createAgent as createAgentIn,
  createAgentSchema,
  deleteAgent as deleteAgentOf,
  existing,
  updateAccountSchema,
  updateAccountSettings,
} from "../account-admin";
import type { AccountBody, AccountUpdatedBody, AgentCreatedBody, AuditLogBody } from "../../core/wire";

const createAccountSchema = z.object({ name: nameSchema, operator_email: emailSchema });

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
  return json((await updateAccountSettings(env, accountId, body, "admin")) satisfies AccountUpdatedBody);
}

export async function createAgent(request: IRequest, env: Env): Promise<Response> {
  await requireAdmin(request, env);
  const accountId = accountIdParam(request);
  const body = await readJson(request, createAgentSchema, MAX_ADMIN_BODY);
  return json((await createAgentIn(env, accountId, body, "admin")) satisfies AgentCreatedBody, 201);
}

export async function deleteAgent(request: IRequest, env: Env): Promise<Response> {
  await requireAdmin(request, env);
  await deleteAgentOf(env, accountIdParam(request), request.params.agent_id ?? "", "admin");
  return noContent();
}

export async function auditLog(request: IRequest, env: Env): Promise<Response> {
  await requireAdmin(request, env);
  return json((await auditLogOf(env, accountIdParam(request))) satisfies AuditLogBody);
}
