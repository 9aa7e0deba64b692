/**
 * The AccountDO's notifications: which audit events notify whom (webhook events, operator emails,
 * CIBA pings), the cap on operator notices, and the alarm that works the outbox. The AccountDO
 * calls `enqueueFor` inside the transaction that records the audit event, so an event is stored
 * exactly when its cause is, and `deliverDue` from its alarm.
 */
import type { AuditEventInput, RequestSummary } from "../account-types";
import { NOTICE_CAP_SCHEMA, NoticeCap, noticeBurst, type HeldBack } from "./notice-cap";
import { OUTBOX_SCHEMA, Outbox, maxRetryDelayMs } from "./outbox";
import { mimeMessage, notificationMime, replayText } from "./email-message";
import { attempt } from "./send";
import { summaryBody, summaryText, webhookBody, webhookEventType, type WebhookEvent, type WebhookFormat } from "./webhook-body";

export const NOTIFY_SCHEMA = [
  ...OUTBOX_SCHEMA,
  ...NOTICE_CAP_SCHEMA,
  `CREATE TABLE IF NOT EXISTS notify_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    webhook_format TEXT NOT NULL
  )`,
];

/** The account as notifications need it (a subset of the AccountDO's `account` row). */
export interface NotifyAccount {
  account_id: string;
  name: string;
  operator_email: string;
  webhook_url: string | null;
  webhook_secret: string | null;
}

export interface NotifierHooks {
  account(): NotifyAccount | undefined;
  /** Writes an audit event (the AccountDO's own `#record`). */
  audit(event: Omit<AuditEventInput, "release">, now: number): void;
}

/** `credential.requested` comes from the worker, which alone can sign the approval link. */
export interface RequestedNotice {
  request: RequestSummary;
  approvalUrl: string | null;
  /** Device flow: the code the operator may type; null for a pushed request. */
  userCode: string | null;
}

const eventId = () => `evt_${[...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;

export class Notifier {
  readonly #outbox: Outbox;
  readonly #cap: NoticeCap;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly env: Env,
    private readonly hooks: NotifierHooks,
    private readonly now: () => number = Date.now,
  ) {
    this.#outbox = new Outbox(ctx.storage.sql, maxRetryDelayMs(env.NOTIFY_MAX_RETRY_DELAY_SECONDS));
    this.#cap = new NoticeCap(ctx.storage.sql, noticeBurst(env.NOTIFY_BURST));
  }

  webhookFormat(): WebhookFormat {
    const row = this.ctx.storage.sql.exec<{ webhook_format: string }>("SELECT webhook_format FROM notify_settings").toArray()[0];
    return row?.webhook_format === "slack" ? "slack" : "keyferry";
  }

  setWebhookFormat(format: WebhookFormat): void {
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO notify_settings (id, webhook_format) VALUES (1, ?)", format);
  }

  /** The notifications a request's audit event causes. Synchronous: call it inside the event's transaction. */
  enqueueFor(event: AuditEventInput, now: number): void {
    const request = event.request;
    if (event.ping && request) {
      this.#outbox.enqueue(
        {
          id: eventId(),
          channel: "ping",
          type: "ping",
          requestId: request.requestId,
          agentId: request.agent.id,
          destination: event.ping.endpoint,
          body: JSON.stringify({ auth_req_id: event.ping.authReqId }),
          bearer: event.ping.token,
        },
        now,
      );
    }
    const type = webhookEventType(event.type);
    if (!type || type === "credential.requested" || !request) return;
    const decidedBy = event.type === "locked" ? "locked" : typeof event.actor === "object" ? event.actor.email : (event.actor ?? null);
    const caller = event.type === "replay_detected" ? (event.detail ?? null) : null;
    this.#enqueueNotice(request, { type, decidedBy, caller }, now, (account) =>
      type === "credential.replayed"
        ? mimeMessage(this.#from(), account.operator_email, `Replayed credential request (${request.vaultKey})`, replayText(request, caller ?? {}), now)
        : null,
    );
  }

  /** `credential.requested` and the operator's email (README, "Device flow or push"). */
  enqueueRequested(notice: RequestedNotice, now: number): void {
    this.#enqueueNotice(notice.request, { type: "credential.requested", approvalUrl: notice.approvalUrl }, now, (account) =>
      notificationMime(this.#from(), account.operator_email, {
        details: notice.request,
        expiresAt: notice.request.expiresAt,
        approvalUrl: notice.approvalUrl,
        userCode: notice.userCode,
      }, now),
    );
  }

  /** A plain email to one address (an operator's invitation), through the same outbox; never capped. */
  enqueueEmail(to: string, subject: string, text: string, now: number): void {
    this.#outbox.enqueue({ requestId: null, agentId: null, id: eventId(), channel: "email", type: "email", destination: to, body: mimeMessage(this.#from(), to, subject, text, now) }, now);
  }

  /**
   * A notification just stored is attempted at once, in the background, instead of by an alarm: the
   * rows are leased and the alarm set to the lease's end before anything is sent, so if the object
   * dies mid-attempt the alarm retries; when every row is settled the alarm goes (no wake-up).
   */
  async sendDue(): Promise<void> {
    const nextRow = this.#outbox.nextDueAt();
    if (nextRow !== null && nextRow <= this.now()) return this.ctx.waitUntil(this.deliverDue());
    // Nothing to send now; a notice held back by the cap still owes its summary at the window's end.
    if (this.#cap.summaryDueAt() !== null) await this.#reschedule();
  }

  /** The alarm and `sendDue`: send the summary a closed window owes, then every due row once; reschedule. */
  async deliverDue(): Promise<void> {
    const account = this.hooks.account();
    const due = this.ctx.storage.transactionSync(() => {
      const now = this.now();
      const heldBack = this.#cap.closeIfDue(now);
      if (heldBack && account) this.#enqueueSummary(account, heldBack, now);
      return this.#outbox.claimDue(now);
    });
    await this.#reschedule();
    if (due.length === 0) return;
    const webhook = account?.webhook_url && account.webhook_secret ? { url: account.webhook_url, secret: account.webhook_secret } : null;
    await Promise.all(
      due.map(async (entry) => {
        const outcome = await attempt(entry, { env: this.env, webhook, now: this.now });
        this.ctx.storage.transactionSync(() => {
          const now = this.now();
          const settled = this.#outbox.settle(entry, outcome, now);
          if (settled.reason !== "failed") return;
          this.hooks.audit(
            {
              type: "notification_failed",
              ...(entry.requestId ? { requestId: entry.requestId } : {}),
              ...(entry.agentId ? { agentId: entry.agentId } : {}),
              detail: { channel: entry.channel, event: entry.type, event_id: entry.id, attempts: settled.attempts, status: settled.status },
            },
            now,
          );
        });
      }),
    );
    await this.#reschedule();
  }

  /**
   * The alarm at the next due row, lease end or summary, or none. Read and set in one synchronous
   * step (no await between), so concurrent sends and the alarm cannot leave it stale.
   */
  #reschedule(): Promise<void> {
    const candidates = [this.#outbox.nextDueAt(), this.#cap.summaryDueAt()].filter((at): at is number => at !== null);
    return candidates.length === 0 ? this.ctx.storage.deleteAlarm() : this.ctx.storage.setAlarm(Math.min(...candidates));
  }

  /** One operator notice: a webhook event (when the account has a webhook) and, if given, an email; capped. */
  #enqueueNotice(
    request: RequestSummary,
    event: Pick<WebhookEvent, "type" | "approvalUrl" | "decidedBy" | "caller">,
    now: number,
    email: (account: NotifyAccount) => string | null,
  ): void {
    const account = this.hooks.account();
    if (!account) return;
    const mail = email(account);
    const hasWebhook = account.webhook_url !== null && account.webhook_secret !== null;
    if (!hasWebhook && mail === null) return;
    if (!this.#cap.admit(now)) return;
    const common = { requestId: request.requestId, agentId: request.agent.id };
    if (hasWebhook) {
      const id = eventId();
      const body = webhookBody(this.webhookFormat(), { ...event, id, createdAt: now, request, accountName: account.name });
      this.#outbox.enqueue({ ...common, id, channel: "webhook", type: event.type, destination: account.webhook_url!, body }, now);
    }
    if (mail !== null) this.#outbox.enqueue({ ...common, id: eventId(), channel: "email", type: "email", destination: account.operator_email, body: mail }, now);
  }

  #enqueueSummary(account: NotifyAccount, held: HeldBack, now: number): void {
    const common = { requestId: null, agentId: null };
    const text = summaryText(account.account_id, held.count, held.since, held.until);
    if (account.webhook_url && account.webhook_secret) {
      const id = eventId();
      const body = summaryBody(this.webhookFormat(), id, account.account_id, held.count, held.since, held.until);
      this.#outbox.enqueue({ ...common, id, channel: "webhook", type: "notifications.summarized", destination: account.webhook_url, body }, now);
    }
    const mail = mimeMessage(this.#from(), account.operator_email, "Keyferry notifications held back", text, now);
    this.#outbox.enqueue({ ...common, id: eventId(), channel: "email", type: "email", destination: account.operator_email, body: mail }, now);
  }

  #from(): string {
    return this.env.EMAIL_FROM || "keyferry@keyferry.local";
  }
}
