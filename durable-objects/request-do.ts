/**
 * One Durable Object per credential request, addressed by `idFromName(user code)` (DESIGN.md).
 * It holds the request's state, its TTL alarm, the failed-attempt counter and the one-time
 * encrypted payload; see durable-objects/README.md for the table. Every method checks expiry
 * itself, and the alarm erases everything (STYLE.md §6).
 */
import { DurableObject } from "cloudflare:workers";
import { decideOutcome, isExpired, lookupOutcome, pollOutcome, type RequestStatus } from "../core/request-state";
import type { AuditEventInput, RequestSummary } from "./account-types";
import type {
  CreateResult,
  DecideResult,
  LookupResult,
  PollResult,
  RequestDetails,
  RequestRecord,
  RequestView,
} from "./request-types";

const SCHEMA = `CREATE TABLE request (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  handle_tag TEXT NOT NULL,
  status TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  interval INTEGER NOT NULL,
  failed_attempts INTEGER NOT NULL DEFAULT 0,
  claim_hash TEXT,
  details TEXT NOT NULL,
  payload TEXT
)`;

type Row = {
  handle_tag: string;
  status: string;
  expires_at: number;
  interval: number;
  failed_attempts: number;
  claim_hash: string | null;
  details: string;
};

export interface Actor {
  ip: string;
  userAgent: string;
}

export class RequestDO extends DurableObject<Env> {
  /** The row, mirrored in memory: this object is its only writer. `null`: no live request. */
  #record: RequestRecord | null = null;
  /** When the previous poll arrived. Memory only: losing it on eviction forgets one throttle. */
  #lastPollAt: number | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => this.#load());
  }

  async create(input: { details: RequestDetails; handleTag: string; expiresAt: number; interval: number }): Promise<CreateResult> {
    if (this.#record && !isExpired(this.#record, Date.now())) return { reason: "collision" };
    const sql = this.ctx.storage.sql;
    this.ctx.storage.transactionSync(() => {
      // The object holds one request at a time: a new one replaces the table of an earlier one.
      sql.exec("DROP TABLE IF EXISTS request");
      sql.exec(SCHEMA);
      sql.exec(
        "INSERT INTO request (id, handle_tag, status, expires_at, interval, details) VALUES (1, ?, 'pending', ?, ?, ?)",
        input.handleTag,
        input.expiresAt,
        input.interval,
        JSON.stringify(input.details),
      );
    });
    this.#record = {
      status: "pending",
      expiresAt: input.expiresAt,
      interval: input.interval,
      failedAttempts: 0,
      claimHash: null,
      details: input.details,
      handleTag: input.handleTag,
    };
    this.#lastPollAt = null;
    await this.ctx.storage.setAlarm(input.expiresAt);
    return { reason: "created" };
  }

  /**
   * A poll with the device code (RFC 8628 §3.4). The hot path: memory only, except the one write
   * when slow_down raises the interval and the read-and-erase at delivery.
   * `client` is given on the OAuth token endpoint: it must be the agent that asked.
   */
  poll(handleTag: string, client: { agentId: string; keyHash: string } | null): PollResult {
    const record = this.#record;
    const now = Date.now();
    if (!record) return { reason: "invalid_grant" };
    if (record.handleTag !== handleTag) return { reason: isExpired(record, now) ? "expired_token" : "invalid_grant" };
    if (client) {
      if (client.agentId !== record.details.agent.id) return { reason: "invalid_grant" };
      if (client.keyHash !== record.details.apiKeyHash) return { reason: "invalid_client" };
    }
    const outcome = pollOutcome(record, this.#lastPollAt, now);
    this.#lastPollAt = now;
    switch (outcome.reason) {
      case "slow_down":
        record.interval = outcome.interval;
        this.ctx.storage.sql.exec("UPDATE request SET interval = ?", outcome.interval);
        return outcome;
      case "deliver":
        return this.#deliver(record);
      default:
        return outcome;
    }
  }

  /** Returns the payload and erases the whole request in the same synchronous step: exactly once. */
  #deliver(record: RequestRecord): PollResult {
    const payload = this.ctx.storage.transactionSync(() => {
      const row = this.ctx.storage.sql.exec<{ payload: string | null }>("SELECT payload FROM request").toArray()[0];
      this.ctx.storage.sql.exec("DELETE FROM request");
      return row?.payload ?? null;
    });
    this.#record = null;
    this.ctx.waitUntil(this.ctx.storage.deleteAlarm());
    if (payload === null) return { reason: "invalid_grant" };
    this.#audit(record, { type: "delivered", release: true });
    return { reason: "delivered", details: record.details, payload };
  }

  /**
   * The operator's look-up: by code and email, or by a signed approval link (`email` null), which
   * names the request it was made for, so it cannot open a later request under the same code.
   */
  async lookup(input: { email: string | null; linkRequestId: string | null; sessionHash: string; actor: Actor }): Promise<LookupResult> {
    const record = this.#record;
    if (!record) return { reason: "not_found" };
    if (input.linkRequestId !== null && input.linkRequestId !== record.details.requestId) return { reason: "not_found" };
    // A pushed request has no code to type: only its link opens it.
    if (input.email !== null && record.details.protocol === "ciba") return { reason: "not_found" };
    const emailMatches = input.email === null || input.email.trim().toLowerCase() === record.details.operatorEmail;
    const outcome = lookupOutcome(record, { sessionHash: input.sessionHash, emailMatches }, Date.now());
    switch (outcome.reason) {
      case "wrong_email": {
        record.failedAttempts = outcome.failedAttempts;
        if (outcome.locked) record.status = "denied";
        this.#writeState(record);
        this.#audit(record, {
          type: outcome.locked ? "locked" : "attempt_failed",
          detail: { ...actorDetail(input.actor), failed_attempts: outcome.failedAttempts },
          release: outcome.locked,
        });
        return { reason: "wrong_email", locked: outcome.locked };
      }
      case "ok":
        if (record.claimHash === null) {
          record.claimHash = outcome.claimHash;
          this.#writeState(record);
        }
        this.#audit(record, { type: "looked_up", detail: actorDetail(input.actor) });
        return { reason: "ok", view: viewOf(record) };
      default:
        return outcome;
    }
  }

  /** Approve (with the payload already encrypted to `encryptionKey`) or deny. */
  async decide(input: { sessionHash: string; decision: "approve" | "deny"; payload: string | null; actor: Actor }): Promise<DecideResult> {
    const record = this.#record;
    if (!record) return { reason: "invalid_token" };
    const outcome = decideOutcome(record, { sessionHash: input.sessionHash, decision: input.decision }, Date.now());
    if (outcome.reason === "invalid_token") return outcome;
    const status: RequestStatus = outcome.reason;
    this.ctx.storage.transactionSync(() => {
      record.status = status;
      this.#writeState(record);
      if (status === "approved") this.ctx.storage.sql.exec("UPDATE request SET payload = ?", input.payload);
    });
    this.#audit(record, {
      type: status,
      actor: record.details.operatorEmail,
      detail: actorDetail(input.actor),
      release: status === "denied",
      // CIBA Core §10.2: the account's outbox pings the agent, durably.
      ...(record.details.ping ? { ping: record.details.ping } : {}),
    });
    return { reason: status, details: record.details };
  }

  /** The agent was deleted: the request ends as denied and its key no longer matches anything. */
  async revoke(): Promise<void> {
    const record = this.#record;
    if (!record || record.status === "delivered") return;
    record.status = "denied";
    record.details.apiKeyHash = "revoked";
    this.ctx.storage.transactionSync(() => {
      this.#writeState(record);
      this.ctx.storage.sql.exec("UPDATE request SET payload = NULL, details = ?", JSON.stringify(record.details));
    });
  }

  /** TTL: erase everything (DESIGN.md). `deleteAll` also drops the table; `#record` says so. */
  override async alarm(): Promise<void> {
    const record = this.#record;
    if (record && !isExpired(record, Date.now())) {
      await this.ctx.storage.setAlarm(record.expiresAt);
      return;
    }
    if (record && (record.status === "pending" || record.status === "approved")) {
      this.#audit(record, { type: "expired", release: true });
    }
    this.#record = null;
    await this.ctx.storage.deleteAll();
  }

  #load(): void {
    const sql = this.ctx.storage.sql;
    const hasTable = sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'request'").toArray().length > 0;
    const row = hasTable ? sql.exec<Row>("SELECT * FROM request").toArray()[0] : undefined;
    this.#record = row
      ? {
          status: row.status as RequestStatus,
          expiresAt: row.expires_at,
          interval: row.interval,
          failedAttempts: row.failed_attempts,
          claimHash: row.claim_hash,
          details: JSON.parse(row.details) as RequestDetails,
          handleTag: row.handle_tag,
        }
      : null;
  }

  #writeState(record: RequestRecord): void {
    this.ctx.storage.sql.exec(
      "UPDATE request SET status = ?, failed_attempts = ?, claim_hash = ?",
      record.status,
      record.failedAttempts,
      record.claimHash,
    );
  }

  /** Audit events go to the account's log in the background; a failure there never fails the request. */
  #audit(record: RequestRecord, event: Omit<AuditEventInput, "requestId" | "agentId" | "request">): void {
    const { details } = record;
    const account = this.env.ACCOUNTS.get(this.env.ACCOUNTS.idFromName(details.accountId));
    this.ctx.waitUntil(
      account
        .recordRequestEvent({ ...event, requestId: details.requestId, agentId: details.agent.id, request: summaryOf(details, record.expiresAt) })
        .catch((error: unknown) => console.error("audit write failed", error instanceof Error ? error.message : error)),
    );
  }
}

function summaryOf(details: RequestDetails, expiresAt: number): RequestSummary {
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

function actorDetail(actor: Actor): Record<string, string> {
  return { ip: actor.ip, user_agent: actor.userAgent.slice(0, 256) };
}

function viewOf(record: RequestRecord): RequestView {
  const { details } = record;
  return {
    requestId: details.requestId,
    userCode: details.userCode,
    accountId: details.accountId,
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
