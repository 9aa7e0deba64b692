/** Pure shapes of a request's record: the transitions' facts, the tombstone, what the page and the audit see. */
import type { RequestFacts } from "../../core/request-state";
import type { RequestSummary } from "../account/account-types";
import type { Actor, RequestDetails, RequestRecord, RequestView } from "./request-types";

export function factsOf(record: RequestRecord): RequestFacts {
  const { details } = record;
  return {
    requestId: details.requestId,
    agentId: details.agent.id,
    apiKeyHash: details.apiKeyHash,
    operatorEmail: details.operatorEmail,
    protocol: details.protocol,
    dpopJkt: details.dpopJkt ?? null,
  };
}

/**
 * What a delivered request keeps until its expiry: who asked and for what (the replay alarm's audit
 * summary), the key hash that tells its agent on the token endpoint, the DPoP key's thumbprint; no
 * payload, no key, no code.
 */
export function tombstoneOf(details: RequestDetails): RequestDetails {
  const { requestId, accountId, agent, apiKeyHash, description, vaultKey, bindingMessage, protocol, createdAt } = details;
  return {
    requestId,
    accountId,
    agent,
    apiKeyHash,
    description,
    vaultKey,
    bindingMessage,
    protocol,
    createdAt,
    userCode: "",
    operatorEmail: "",
    publicKey: null,
    encryptionKey: {},
    wrappedPrivateKey: null,
    ping: null,
    // A thumbprint of a public key, no secret: a late acknowledgement is still checked against it.
    dpopJkt: details.dpopJkt ?? null,
  };
}

/**
 * What a bound delivery keeps through its grace window: the tombstone, plus what a poll with the
 * handle needs to reopen the kept payload (the agent's public key, or the request's private key
 * wrapped under the handle's secret). The payload stays a JWE the service cannot open alone.
 */
export function keptAnswerOf(details: RequestDetails): RequestDetails {
  return { ...tombstoneOf(details), publicKey: details.publicKey, wrappedPrivateKey: details.wrappedPrivateKey };
}

export function summaryOf(details: RequestDetails, expiresAt: number): RequestSummary {
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

export function viewOf(record: RequestRecord): RequestView {
  const { details } = record;
  return {
    requestId: details.requestId,
    userCode: details.userCode,
    accountId: details.accountId,
    accountName: details.accountName ?? null,
    operatorEmail: details.operatorEmail,
    agent: details.agent,
    description: details.description,
    vaultKey: details.vaultKey,
    bindingMessage: details.bindingMessage,
    publicKey: details.publicKey,
    encryptionKey: details.encryptionKey,
    expiresAt: record.expiresAt,
    protocol: details.protocol,
  };
}
