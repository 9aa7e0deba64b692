/**
 * The account's active-request slots (README, "Contract notes": at most 5 pending or approved
 * requests) and each agent's issuance count (at most 10 `requested` events a minute), as synchronous
 * steps of the AccountDO's `issue` transaction. Expired slots are freed lazily here, so a lost
 * release can hold a slot only until its request expires.
 */
import { MAX_ACTIVE_REQUESTS_PER_ACCOUNT, MAX_ISSUED_PER_AGENT_PER_MINUTE } from "../../core/limits";
import type { AuditEventInput, IssueInput } from "./account-types";
import { requestedSince } from "./audit-log";

export type SlotRefusal = { reason: "too_many_requests"; retryAfterSeconds: number; cause: "rate_limited" | "active_requests" };
type RecordEvent = (event: Omit<AuditEventInput, "release" | "lookedUp">, now: number) => void;

/**
 * Takes a slot and writes the `requested` event that counts against the agent's minute, before the
 * request object exists: a concurrent issuance (the object's input gate opens while it awaits) sees
 * both. Null when taken; else the refusal, audited.
 */
export function takeSlot(
  sql: SqlStorage,
  input: Pick<IssueInput, "requestId" | "userCode" | "expiresAt" | "auditDetail">,
  slot: { agentId: string; consoleView: string },
  now: number,
  record: RecordEvent,
): SlotRefusal | null {
  const { agentId } = slot;
  sql.exec("DELETE FROM active_requests WHERE expires_at <= ?", now);
  const issued = requestedSince(sql, agentId, now - 60_000);
  if (issued.length >= MAX_ISSUED_PER_AGENT_PER_MINUTE) {
    record({ type: "request_refused", agentId, detail: { reason: "rate_limited" } }, now);
    return { reason: "too_many_requests", retryAfterSeconds: Math.max(1, Math.ceil((issued[0]! + 60_000 - now) / 1000)), cause: "rate_limited" };
  }
  const active = sql.exec<{ expires_at: number }>("SELECT expires_at FROM active_requests ORDER BY expires_at").toArray();
  if (active.length >= MAX_ACTIVE_REQUESTS_PER_ACCOUNT) {
    record({ type: "request_refused", agentId, detail: { reason: "too_many_requests" } }, now);
    return { reason: "too_many_requests", retryAfterSeconds: Math.max(1, Math.ceil((active[0]!.expires_at - now) / 1000)), cause: "active_requests" };
  }
  // The console's summary rides in the slot's row (./console-feed.ts).
  sql.exec(
    "INSERT INTO active_requests (request_id, user_code, agent_id, expires_at, console_view) VALUES (?, ?, ?, ?, ?)",
    input.requestId,
    input.userCode,
    agentId,
    input.expiresAt,
    slot.consoleView,
  );
  record({ type: "requested", requestId: input.requestId, agentId, detail: input.auditDetail }, now);
  return null;
}

/** The user code was taken by a live request: the slot and its `requested` event go (the worker draws again). */
export function dropSlot(sql: SqlStorage, requestId: string): void {
  sql.exec("DELETE FROM active_requests WHERE request_id = ?", requestId);
  sql.exec("DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit WHERE type = 'requested' AND request_id = ?)", requestId);
}

export const holdsSlot = (sql: SqlStorage, requestId: string) => sql.exec("SELECT 1 FROM active_requests WHERE request_id = ?", requestId).toArray().length > 0;
