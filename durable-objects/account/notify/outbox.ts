/**
 * The account's outbox (README, "Notifications that survive outages"): every notification the account owes someone
 * (webhook events, operator emails, CIBA pings) is a row here, written in the same transaction as
 * the audit event that causes it, and sent by the AccountDO's alarm. A row is deleted when the
 * receiver acknowledges it (2xx) or when it is final (a 4xx other than 408/429, or retried for
 * longer than RETRY_WINDOW_MS); a final failure is audited by the caller as `notification_failed`.
 * Rows outlive the request, the worker invocation, the object's eviction and a restart.
 */

/** `push`: `destination` is a push subscription's id, `body` the payload before encryption (no secret in it). */
export type Channel = "webhook" | "ping" | "email" | "push";

export interface NewOutboxEntry {
  /** The event id: `Keyferry-Event-Id` and the body's `id`, the same on every attempt. */
  id: string;
  channel: Channel;
  /** The webhook event type (`credential.requested`, …), or `email` / `ping`. */
  type: string;
  requestId: string | null;
  agentId: string | null;
  /** Webhook or ping URL, or the email recipient. */
  destination: string;
  /** The exact bytes to send: the JSON body, or the MIME message. */
  body: string;
  /** CIBA ping only: the client's notification token, sent as its bearer (CIBA Core §10.2). */
  bearer?: string | null;
}

export interface OutboxEntry extends Required<NewOutboxEntry> {
  createdAt: number;
  attempts: number;
  nextAt: number;
}

/** What one attempt came to. `retryAfterMs`: the receiver's `Retry-After`, if it gave one. */
export type AttemptOutcome =
  | { reason: "acknowledged"; status: number }
  | { reason: "retry"; status: number | null; retryAfterMs: number | null }
  | { reason: "final"; status: number | null };

export type Settled = { reason: "done" } | { reason: "rescheduled"; nextAt: number } | { reason: "failed"; attempts: number; status: number | null };

/**
 * No index beyond the key (each entry is one more row written per insert and delete): the table
 * holds only what is still owed, a handful of rows, so finding the due ones reads them all.
 */
export const OUTBOX_SCHEMA = [
  `CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    type TEXT NOT NULL,
    request_id TEXT,
    agent_id TEXT,
    destination TEXT NOT NULL,
    body TEXT NOT NULL,
    bearer TEXT,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    last_status INTEGER
  ) WITHOUT ROWID`,
];

/** Receivers are retried for at least this long before an event is abandoned (README, "Notifications that survive outages"). */
export const RETRY_WINDOW_MS = 60 * 60_000;
export const BASE_DELAY_MS = 5_000;
export const MAX_DELAY_MS = 10 * 60_000;
/** A receiver's `Retry-After` is honoured up to this. */
export const MAX_RETRY_AFTER_MS = 60 * 60_000;
/** An attempt in flight holds its row this long: a crash or eviction mid-attempt retries after it. */
export const LEASE_MS = 60_000;
/** Rows attempted per alarm; the rest wait for the next one, which is set at once. */
const BATCH = 20;

/** `NOTIFY_MAX_RETRY_DELAY_SECONDS` var: the backoff's cap (default 600 s; the soak lowers it to bound its wait). */
export function maxRetryDelayMs(value: string | undefined): number {
  const seconds = Number.parseInt(value ?? "", 10);
  return Number.isFinite(seconds) && seconds >= 1 ? Math.min(seconds * 1000, MAX_DELAY_MS) : MAX_DELAY_MS;
}

/**
 * Exponential backoff with jitter: `BASE · 2^(n−1)`, capped at MAX_DELAY_MS, scaled by a random
 * factor in [0.5, 1.5) so that many receivers failing together do not retry together. A
 * `Retry-After` longer than that is waited for instead (RFC 9110 §10.2.3).
 */
export function retryDelayMs(attempts: number, retryAfterMs: number | null, random: () => number = Math.random, maxDelayMs = MAX_DELAY_MS): number {
  const exponential = Math.min(maxDelayMs, BASE_DELAY_MS * 2 ** Math.max(0, attempts - 1));
  const jittered = Math.round(exponential * (0.5 + random()));
  return Math.max(jittered, Math.min(retryAfterMs ?? 0, MAX_RETRY_AFTER_MS));
}

/** `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3); null when absent or unreadable. */
export function parseRetryAfter(header: string | null, now: number): number | null {
  if (header === null) return null;
  const value = header.trim();
  if (/^\d{1,9}$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

/** Network errors, 408, 429 and 5xx are worth retrying; any other 4xx (and a redirect) is final. */
export function outcomeOf(status: number, retryAfterMs: number | null): AttemptOutcome {
  if (status >= 200 && status < 300) return { reason: "acknowledged", status };
  if (status === 408 || status === 429 || status >= 500) return { reason: "retry", status, retryAfterMs };
  return { reason: "final", status };
}

type Row = {
  id: string;
  channel: Channel;
  type: string;
  request_id: string | null;
  agent_id: string | null;
  destination: string;
  body: string;
  bearer: string | null;
  created_at: number;
  attempts: number;
  next_at: number;
};

const entryOf = (row: Row): OutboxEntry => ({
  id: row.id,
  channel: row.channel,
  type: row.type,
  requestId: row.request_id,
  agentId: row.agent_id,
  destination: row.destination,
  body: row.body,
  bearer: row.bearer,
  createdAt: row.created_at,
  attempts: row.attempts,
  nextAt: row.next_at,
});

/** The outbox table. Synchronous SQL only: callers put it inside their own `transactionSync`. */
export class Outbox {
  constructor(
    private readonly sql: SqlStorage,
    private readonly maxDelayMs = MAX_DELAY_MS,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * Stored before its first attempt, and already claimed for it: counted as attempted and leased
   * for LEASE_MS in the same row write, so an attempt that succeeds costs no lease row (bench/README.md,
   * "Cost per handoff"); if the object dies mid-attempt the row comes due when the lease ends.
   */
  enqueue(entry: NewOutboxEntry, now: number): OutboxEntry {
    const stored: OutboxEntry = { ...entry, bearer: entry.bearer ?? null, createdAt: now, attempts: 1, nextAt: now + LEASE_MS };
    this.sql.exec(
      `INSERT INTO outbox (id, channel, type, request_id, agent_id, destination, body, bearer, created_at, attempts, next_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      stored.id,
      stored.channel,
      stored.type,
      stored.requestId,
      stored.agentId,
      stored.destination,
      stored.body,
      stored.bearer,
      stored.createdAt,
      stored.attempts,
      stored.nextAt,
    );
    return stored;
  }

  /**
   * The rows due now, each counted as attempted and leased for LEASE_MS before it is sent: if the
   * object dies mid-attempt the row comes due again, and the receiver may see it twice (same id).
   */
  claimDue(now: number): OutboxEntry[] {
    const rows = this.sql.exec<Row>("SELECT * FROM outbox WHERE next_at <= ? ORDER BY next_at LIMIT ?", now, BATCH).toArray();
    for (const row of rows) {
      row.attempts += 1;
      this.sql.exec("UPDATE outbox SET attempts = ?, next_at = ? WHERE id = ?", row.attempts, now + LEASE_MS, row.id);
    }
    return rows.map(entryOf);
  }

  /** Deletes an acknowledged or final row, or schedules the next attempt. */
  settle(entry: OutboxEntry, outcome: AttemptOutcome, now: number): Settled {
    if (outcome.reason === "acknowledged") {
      this.sql.exec("DELETE FROM outbox WHERE id = ?", entry.id);
      return { reason: "done" };
    }
    const nextAt = outcome.reason === "retry" ? now + retryDelayMs(entry.attempts, outcome.retryAfterMs, this.random, this.maxDelayMs) : null;
    // Abandoned only once a failed attempt comes at least RETRY_WINDOW_MS after the event.
    if (nextAt === null || now - entry.createdAt >= RETRY_WINDOW_MS) {
      this.sql.exec("DELETE FROM outbox WHERE id = ?", entry.id);
      return { reason: "failed", attempts: entry.attempts, status: outcome.status };
    }
    this.sql.exec("UPDATE outbox SET next_at = ?, last_status = ? WHERE id = ?", nextAt, outcome.status, entry.id);
    return { reason: "rescheduled", nextAt };
  }

  has(id: string): boolean {
    return this.sql.exec("SELECT 1 FROM outbox WHERE id = ?", id).toArray().length > 0;
  }

  /** When the alarm must next run for this table, or null when it is empty. */
  nextDueAt(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT MIN(next_at) AS at FROM outbox").one().at;
  }
}
