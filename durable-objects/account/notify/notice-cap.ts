/**
 * The operator-notification cap: in any NOTICE_WINDOW_MS an account's operator gets at most
 * `burst` notices (emails and webhook events) one by one; the rest are held back and counted by
 * event type, and one summary naming each type goes out when the window ends. A flood of
 * short-lived requests (`requested_expiry=1` churn) then costs the operator `burst` + 1 messages
 * per window, not one per request. Security alerts (SECURITY_ALERTS: a replayed code) are never
 * held back nor counted against the burst: one noisy agent must not hide the alert that reveals a
 * leaked code. The audit log still records every event. CIBA pings, which go to the agent, are not capped.
 *
 * What a window has sent is counted from the audit log, not stored (bench/README.md, "Cost per
 * handoff": a counter would be one row written per notice): the audit events since the window's
 * first (`start_seq`, a rowid range) of the types that notify this account, less those held back.
 * The window's row is written when a window opens and when a notice is held back, not per notice.
 * A type that notifies only since a webhook was added mid-window is counted for the whole window
 * (the cap errs towards holding back), and a `requested` event whose request was revoked at once counts too.
 */
import type { WebhookEventType } from "./notice-types";

export const NOTICE_CAP_SCHEMA = [
  `CREATE TABLE notice_window (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    started_at INTEGER NOT NULL,
    start_seq INTEGER NOT NULL DEFAULT 0,
    held_back TEXT NOT NULL DEFAULT '{}'
  )`,
];

export const NOTICE_WINDOW_MS = 10 * 60_000;
export const DEFAULT_NOTICE_BURST = 20;

/** Notices that always go out at once, whatever the burst: they reveal a leaked code. */
export const SECURITY_ALERTS: ReadonlySet<WebhookEventType> = new Set(["credential.replayed"]);

/** `NOTIFY_BURST` var: notices per account per window before the rest are summarized. */
export function noticeBurst(value: string | undefined): number {
  const parsed = Number.parseInt(value ?? "", 10);
  return Number.isFinite(parsed) && parsed >= 1 ? parsed : DEFAULT_NOTICE_BURST;
}

/** Held back, by event type. */
export type HeldBackCounts = Partial<Record<WebhookEventType, number>>;
type WindowRow = { started_at: number; start_seq: number; held_back: string };

export interface HeldBack {
  counts: HeldBackCounts;
  since: number;
  until: number;
}

export class NoticeCap {
  constructor(
    private readonly sql: SqlStorage,
    private readonly burst: number,
  ) {}

  /**
   * One notice, whose audit event is written next in this transaction (carrying the notice: ./owed.ts):
   * true when it may go out now, false when it is held back for the summary. `notifying`: the audit types that notify this
   * account (every lifecycle event with a webhook, else only `requested`, which is emailed).
   */
  admit(type: WebhookEventType, now: number, notifying: readonly string[]): boolean {
    if (SECURITY_ALERTS.has(type)) return true;
    const row = this.#row();
    if (!row || now >= row.started_at + NOTICE_WINDOW_MS) {
      // A window that ended with notices held back is closed by `closeIfDue` first (the caller's order).
      this.sql.exec("INSERT OR REPLACE INTO notice_window (id, started_at, start_seq, held_back) VALUES (1, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit), '{}')", now);
      return true;
    }
    const counts = heldOf(row);
    const held = Object.values(counts).reduce((sum, n) => sum + (n ?? 0), 0);
    const events = this.sql
      .exec<{ n: number }>(`SELECT COUNT(*) AS n FROM audit WHERE seq >= ? AND at >= ? AND type IN (${notifying.map(() => "?").join(", ")})`, row.start_seq, row.started_at, ...notifying)
      .one().n;
    // `+ 1`: this notice's own event, not yet in the log.
    if (events + 1 - held <= this.burst) return true;
    counts[type] = (counts[type] ?? 0) + 1;
    this.sql.exec("UPDATE notice_window SET held_back = ?", JSON.stringify(counts));
    return false;
  }

  /** The window has ended with notices held back: returns what its summary must say, and resets it. */
  closeIfDue(now: number): HeldBack | null {
    const row = this.#row();
    if (!row || now < row.started_at + NOTICE_WINDOW_MS) return null;
    const counts = heldOf(row);
    if (Object.keys(counts).length === 0) return null;
    this.sql.exec("DELETE FROM notice_window");
    return { counts, since: row.started_at, until: row.started_at + NOTICE_WINDOW_MS };
  }

  /** When a summary falls due, if one is owed: the alarm must run then. */
  summaryDueAt(): number | null {
    const row = this.#row();
    return row && Object.keys(heldOf(row)).length > 0 ? row.started_at + NOTICE_WINDOW_MS : null;
  }

  #row(): WindowRow | undefined {
    return this.sql.exec<WindowRow>("SELECT started_at, start_seq, held_back FROM notice_window").toArray()[0];
  }
}

const heldOf = (row: WindowRow): HeldBackCounts => JSON.parse(row.held_back) as HeldBackCounts;
