/**
 * The account's audit log, kept in its object's SQLite (tables `audit` and `audit_noise`, made by
 * account-do.ts). Which events are noise: anyone with a key can make refusals, anyone with a user code failed
 * attempts. They are counted, one row per key and window (`detail.count`, `detail.last_at`), and
 * evicted only among themselves, so they can never push a decision (`looked_up`, `approved`,
 * `denied`, `locked`, `delivered`, `expired`, `replay_detected`) or an admin change out of the log.
 */
import type { AuditDetail, AuditEventInput, AuditRecord, DecisionActor } from "./account-types";
import { ALL_OF_THE_LOG, liveSlots } from "./live-slots";
import { OWES_SOMETHING } from "./notify/owed";

/** Non-noise events kept, newest first, besides those of requests still holding their slots. */
export const AUDIT_LIMIT = 1000;
/** Noise rows kept, newest first: each is already a count over a window. */
export const AUDIT_NOISE_LIMIT = 200;
/** The log is cut back to AUDIT_LIMIT once every this many events (so it holds at most this many more). */
const EVICT_EVERY = 50;
/** A run of the same noise is one event for this long from its first occurrence. */
export const AUDIT_NOISE_WINDOW_MS = 10 * 60 * 1000;

/** The key repeated noise is counted under, or null for an event that is always its own row. */
export function noiseKey(event: Pick<AuditEventInput, "type" | "agentId" | "requestId" | "detail">): string | null {
  switch (event.type) {
    case "request_refused":
      return `request_refused:${event.agentId ?? ""}:${String(event.detail?.reason ?? "")}`;
    case "attempt_failed":
      return `attempt_failed:${event.requestId ?? ""}`;
    default:
      return null;
  }
}

/**
 * Appends an audit event and returns its row. Noise (refusals, failed attempts: `noiseKey`) is
 * counted in one row per key and window and evicted only among itself, so no amount of it pushes a
 * decision out of the log; every other event keeps the newest AUDIT_LIMIT, a request holding its
 * slot all of its events, and a row that still owes notifications (`owed`, the JSON of
 * ./notify/owed.ts, written by this same INSERT) stays until they are settled.
 */
export function recordAudit(sql: SqlStorage, event: AuditEventInput, now: number, owed: string | null = null): number {
  // An event that owes notifications is always its own row: a noise row's update would drop them.
  const key = owed === null ? noiseKey(event) : null;
  if (key !== null) {
    const open = sql.exec<{ seq: number; detail: string | null }>(
      "SELECT audit.seq, audit.detail FROM audit_noise JOIN audit ON audit.seq = audit_noise.seq WHERE noise_key = ? AND window_end > ? ORDER BY audit.seq DESC LIMIT 1",
      key,
      now,
    ).toArray()[0];
    if (open) {
      const previous = open.detail ? (JSON.parse(open.detail) as Record<string, unknown>) : {};
      const count = (typeof previous.count === "number" ? previous.count : 1) + 1;
      sql.exec("UPDATE audit SET detail = ? WHERE seq = ?", JSON.stringify({ ...event.detail, count, last_at: new Date(now).toISOString() }), open.seq);
      return open.seq;
    }
  }
  const seq = sql
    .exec<{ seq: number }>(
      "INSERT INTO audit (at, type, request_id, agent_id, actor, detail, user_code, expires_at, console_view, owed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
      now,
      event.type,
      event.requestId ?? null,
      event.agentId ?? null,
      typeof event.actor === "object" ? JSON.stringify(event.actor) : (event.actor ?? null),
      event.detail ? JSON.stringify(event.detail) : null,
      // A `requested` row is its request's slot (./live-slots.ts).
      event.slot?.userCode ?? null,
      event.slot?.expiresAt ?? null,
      event.slot?.consoleView ?? null,
      owed,
    )
    .one().seq;
  if (key !== null) {
    sql.exec("INSERT INTO audit_noise (seq, noise_key, window_end) VALUES (?, ?, ?)", seq, key, now + AUDIT_NOISE_WINDOW_MS);
    const cutoff = sql.exec<{ seq: number }>("SELECT seq FROM audit_noise ORDER BY seq DESC LIMIT 1 OFFSET ?", AUDIT_NOISE_LIMIT).toArray()[0];
    if (cutoff) {
      sql.exec("DELETE FROM audit WHERE seq IN (SELECT seq FROM audit_noise WHERE seq <= ?)", cutoff.seq);
      sql.exec("DELETE FROM audit_noise WHERE seq <= ?", cutoff.seq);
    }
    return seq;
  }
  // The eviction reads the log twice (the cutoff, the live slots): done every EVICT_EVERY events, not on each (rows read are billed too).
  if (seq % EVICT_EVERY !== 0) return seq;
  const cutoff = sql
    .exec<{ seq: number }>("SELECT seq FROM audit WHERE seq NOT IN (SELECT seq FROM audit_noise) ORDER BY seq DESC LIMIT 1 OFFSET ?", AUDIT_LIMIT)
    .toArray()[0];
  if (!cutoff) return seq;
  // A request holding its slot keeps its events, however many others follow: its `requested` row is
  // the slot (and the console's summary), its `approved` what keeps it off the console's list.
  // A row still owing is kept (./notify/owed.ts; one whose entries its issuance sent owes nothing).
  const held = liveSlots(sql, now, ALL_OF_THE_LOG).map((row) => row.requestId);
  sql.exec(
    `DELETE FROM audit WHERE seq <= ? AND seq NOT IN (SELECT seq FROM audit_noise) AND NOT ${OWES_SOMETHING}
       AND (request_id IS NULL OR request_id NOT IN (SELECT value FROM json_each(?)))`,
    cutoff.seq,
    JSON.stringify(held),
  );
  return seq;
}

/**
 * The log, newest first (the worker renders it for the admin API). A decision or expiry that
 * carries the look-up before it (`detail.looked_up`, stored in the same row: one row written instead
 * of two) is read back as two events, the `looked_up` right before it.
 */
export function readAudit(sql: SqlStorage): AuditRecord[] {
  return sql
    .exec<{ at: number; type: string; request_id: string | null; agent_id: string | null; actor: string | null; detail: string | null }>(
      // `notifications_moved` rows only carry what version 5's outbox owed (../account-schema.ts): no event of their own.
      "SELECT * FROM audit WHERE type <> 'notifications_moved' ORDER BY seq DESC LIMIT ?",
      AUDIT_LIMIT + AUDIT_NOISE_LIMIT,
    )
    .toArray()
    .flatMap((row) => {
      const ids = { ...(row.request_id ? { requestId: row.request_id } : {}), ...(row.agent_id ? { agentId: row.agent_id } : {}) };
      const { looked_up: lookedUp, ...detail } = row.detail ? (JSON.parse(row.detail) as AuditDetail & { looked_up?: { at: number } & AuditDetail }) : {};
      const record: AuditRecord = {
        at: row.at,
        type: row.type as AuditRecord["type"],
        ...ids,
        // A decision's actor is a JSON object; older events and admin changes, a plain string.
        ...(row.actor ? { actor: row.actor.startsWith("{") ? (JSON.parse(row.actor) as DecisionActor) : row.actor } : {}),
        ...(row.detail ? { detail: detail as AuditDetail } : {}),
      };
      if (!lookedUp) return [record];
      const { at, ...lookupDetail } = lookedUp;
      return [record, { at, type: "looked_up" as const, ...ids, detail: lookupDetail as AuditDetail }];
    });
}
