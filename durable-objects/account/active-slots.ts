/**
 * The account's active-request slots (README, "Contract notes": at most 5 pending or approved
 * requests) and each agent's issuance count (at most 10 `requested` events a minute), as synchronous
 * steps of the AccountDO's `issue` transaction.
 *
 * A slot's end is read from the audit log, not written (bench/README.md, "Cost per handoff"): a
 * request holds its slot until it expires or an ending event (`denied`, `locked`, `expired`,
 * `delivered`) follows its `requested` event (`requested_seq`: a rowid range over the events since).
 * An ended or expired slot's row is taken over by the next issuance (one row update, instead of a
 * delete when the request ends and an insert for the next), so the table holds at most 5 rows.
 */
import { MAX_ACTIVE_REQUESTS_PER_ACCOUNT, MAX_ISSUED_PER_AGENT_PER_MINUTE } from "../../core/limits";
import type { AuditEventInput, IssueInput } from "./account-types";
import { requestedSince } from "./audit-log";

export type SlotRefusal = { reason: "too_many_requests"; retryAfterSeconds: number; cause: "rate_limited" | "active_requests" };
export type RecordEvent = (event: Omit<AuditEventInput, "lookedUp">, now: number) => void;

/** The audit events after which a request holds no slot; `decided` adds `approved`, after which the console no longer lists it. */
const ENDING = ["denied", "locked", "expired", "delivered"];
const DECIDED = ["approved", ...ENDING];

/** SQL: the `active_requests` row's request has one of these events since its `requested`. */
export const hasEnded = (types: "slot" | "console") =>
  `EXISTS (SELECT 1 FROM audit WHERE audit.seq > active_requests.requested_seq AND audit.request_id = active_requests.request_id AND audit.type IN (${(types === "slot" ? ENDING : DECIDED).map((t) => `'${t}'`).join(", ")}))`;

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
  const issued = requestedSince(sql, agentId, now - 60_000);
  if (issued.length >= MAX_ISSUED_PER_AGENT_PER_MINUTE) {
    record({ type: "request_refused", agentId, detail: { reason: "rate_limited" } }, now);
    return { reason: "too_many_requests", retryAfterSeconds: Math.max(1, Math.ceil((issued[0]! + 60_000 - now) / 1000)), cause: "rate_limited" };
  }
  const rows = sql
    .exec<{ slot: number; expires_at: number; ended: number }>(`SELECT slot, expires_at, expires_at <= ? OR ${hasEnded("slot")} AS ended FROM active_requests ORDER BY expires_at`, now)
    .toArray();
  const active = rows.filter((row) => !row.ended);
  if (active.length >= MAX_ACTIVE_REQUESTS_PER_ACCOUNT) {
    record({ type: "request_refused", agentId, detail: { reason: "too_many_requests" } }, now);
    return { reason: "too_many_requests", retryAfterSeconds: Math.max(1, Math.ceil((active[0]!.expires_at - now) / 1000)), cause: "active_requests" };
  }
  record({ type: "requested", requestId: input.requestId, agentId, detail: input.auditDetail }, now);
  // The console's summary rides in the slot's row (./console-feed.ts); `requested_seq` is the event just written.
  const values = [input.requestId, input.userCode, agentId, input.expiresAt, slot.consoleView] as const;
  const free = rows.find((row) => row.ended);
  if (free) {
    sql.exec(
      "UPDATE active_requests SET request_id = ?, user_code = ?, agent_id = ?, expires_at = ?, console_view = ?, requested_seq = (SELECT MAX(seq) FROM audit) WHERE slot = ?",
      ...values,
      free.slot,
    );
  } else {
    sql.exec("INSERT INTO active_requests (request_id, user_code, agent_id, expires_at, console_view, requested_seq) VALUES (?, ?, ?, ?, ?, (SELECT MAX(seq) FROM audit))", ...values);
  }
  return null;
}

/** The user code was taken by a live request: the slot and its `requested` event go (the worker draws again). */
export function dropSlot(sql: SqlStorage, requestId: string): void {
  sql.exec("DELETE FROM active_requests WHERE request_id = ?", requestId);
  sql.exec("DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit WHERE type = 'requested' AND request_id = ?)", requestId);
}

export const holdsSlot = (sql: SqlStorage, requestId: string) => sql.exec("SELECT 1 FROM active_requests WHERE request_id = ?", requestId).toArray().length > 0;

/** A deleted agent's requests that may still be live (ended and expired ones need no revocation). */
export function liveSlotsOf(sql: SqlStorage, agentId: string, now: number): string[] {
  return sql
    .exec<{ user_code: string }>(`SELECT user_code FROM active_requests WHERE agent_id = ? AND expires_at > ? AND NOT ${hasEnded("slot")}`, agentId, now)
    .toArray()
    .map((row) => row.user_code);
}
