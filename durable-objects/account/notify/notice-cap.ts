/**
 * The operator-notification cap: in any NOTICE_WINDOW_MS an account's operator gets at most
 * `burst` notices (emails and webhook events) one by one; the rest are held back and counted by
 * event type, and one summary naming each type goes out when the window ends. A flood of
 * short-lived requests (`requested_expiry=1` churn) then costs the operator `burst` + 1 messages
 * per window, not one per request. Security alerts (SECURITY_ALERTS: a replayed code) are never
 * held back nor counted against the burst: one noisy agent must not hide the alert that reveals a
 * leaked code. The audit log still records every event. CIBA pings, which go to the agent, are not capped.
 */
import type { WebhookEventType } from "./notice-types";

export const NOTICE_CAP_SCHEMA = [
  `CREATE TABLE notice_window (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    started_at INTEGER NOT NULL,
    sent INTEGER NOT NULL,
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
type WindowRow = { started_at: number; sent: number; held_back: string };

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

  /** One notice: true when it may go out now, false when it is held back for the summary. */
  admit(type: WebhookEventType, now: number): boolean {
    if (SECURITY_ALERTS.has(type)) return true;
    const row = this.#row();
    if (!row || now >= row.started_at + NOTICE_WINDOW_MS) {
      // A window that ended with notices held back is closed by `closeIfDue` first (the caller's order).
      this.sql.exec("INSERT OR REPLACE INTO notice_window (id, started_at, sent, held_back) VALUES (1, ?, 1, '{}')", now);
      return true;
    }
    if (row.sent < this.burst) {
      this.sql.exec("UPDATE notice_window SET sent = sent + 1");
      return true;
    }
    const counts = heldOf(row);
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
    return this.sql.exec<WindowRow>("SELECT started_at, sent, held_back FROM notice_window").toArray()[0];
  }
}

const heldOf = (row: WindowRow): HeldBackCounts => JSON.parse(row.held_back) as HeldBackCounts;
