/**
 * What a request tells its account (../account/): the account's object, and the request's audit
 * events, each with the request's summary so the account can notify and list it without asking back.
 */
import type { AuditEventInput } from "../account/account-types";
import { summaryOf } from "./request-views";
import type { LiveRecord, RequestRecord } from "./request-types";

/** An event as the request states it; the request's ids and summary are added from its record. */
export type RequestEvent = Omit<AuditEventInput, "requestId" | "agentId" | "request">;

export function accountOf(env: Env, accountId: string) {
  return env.ACCOUNTS.get(env.ACCOUNTS.idFromName(accountId));
}

export function auditEventOf(record: RequestRecord, event: RequestEvent): AuditEventInput {
  const { details } = record;
  return { ...event, requestId: details.requestId, agentId: details.agent.id, request: summaryOf(details, record.expiresAt) };
}

/** Audit events go to the account's log in the background; a failure there never fails the request. */
export function auditInBackground(ctx: DurableObjectState, env: Env, record: RequestRecord, event: RequestEvent): void {
  ctx.waitUntil(
    accountOf(env, record.details.accountId)
      .recordRequestEvent(auditEventOf(record, event))
      .catch((error: unknown) => console.error("audit write failed", error instanceof Error ? error.message : error)),
  );
}

/** The claiming look-up, for the event that follows it (RequestDetails.lookedUp). */
export const lookedUpOf = (record: LiveRecord) => (record.details.lookedUp ? { lookedUp: record.details.lookedUp } : {});
