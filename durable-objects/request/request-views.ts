/** Pure shapes of a request's record: the transitions' facts, the tombstone, what the page and the audit see. */
import type { RequestFacts, Tombstone } from "../../core/request-state";
import type { RequestSummary } from "../account/account-types";
import { approvalsViewOf } from "./approval-progress";
import type { Actor, KeptAnswer, LiveRecord, RequestDetails, RequestRecord, RequestView } from "./request-types";

export function factsOf(record: RequestRecord): RequestFacts {
  const { details } = record;
  const { requestId, apiKeyHash, protocol } = details;
  if (record.status === "delivered") return { requestId, agentId: details.agent.id, apiKeyHash, protocol, operatorEmail: null, dpopJkt: details.dpopJkt };
  return { requestId, agentId: details.agent.id, apiKeyHash, protocol, operatorEmail: record.details.operatorEmail, dpopJkt: record.details.dpopJkt };
}

/** A delivered request's tombstone (core/request-state.ts): who asked and for what, nothing more. */
export function tombstoneOf(details: RequestDetails): Tombstone {
  const { requestId, accountId, agent, apiKeyHash, description, vaultKey, bindingMessage, protocol, createdAt, dpopJkt } = details;
  return { requestId, accountId, agent, apiKeyHash, description, vaultKey, bindingMessage, protocol, createdAt, dpopJkt };
}

/**
 * What a bound delivery keeps through its grace window: the payload as delivered (a JWE the service
 * cannot open alone) and what a poll with the handle needs to open it (the agent's public key, or
 * the request's private key wrapped under the handle's secret).
 */
export function keptAnswerOf(details: RequestDetails, payload: string): KeptAnswer {
  return { payload, publicKey: details.publicKey, wrappedPrivateKey: details.wrappedPrivateKey };
}

export function summaryOf(details: Tombstone, expiresAt: number): RequestSummary {
  return {
    requestId: details.requestId,
    accountId: details.accountId,
    agent: details.agent,
    description: details.description,
    vaultKey: details.vaultKey,
    expiresAt,
    bindingMessage: details.bindingMessage,
    protocol: details.protocol,
  };
}

export function actorDetail(actor: Actor): Record<string, string> {
  return { ip: actor.ip, user_agent: actor.userAgent.slice(0, 256) };
}

export function viewOf(record: LiveRecord, passkeyRequired: boolean): RequestView {
  const { details } = record;
  return {
    requestId: details.requestId,
    userCode: details.userCode,
    accountId: details.accountId,
    accountName: details.accountName,
    operatorEmail: details.operatorEmail,
    agent: details.agent,
    description: details.description,
    vaultKey: details.vaultKey,
    bindingMessage: details.bindingMessage,
    publicKey: details.publicKey,
    encryptionKey: details.encryptionKey,
    expiresAt: record.expiresAt,
    protocol: details.protocol,
    passkeyRequired,
    ...approvalsViewOf(record),
  };
}
