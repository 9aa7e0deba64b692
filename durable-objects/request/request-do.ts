/**
 * One Durable Object per credential request, addressed by `idFromName(user code)` (DESIGN.md).
 * It holds the request's state, its TTL alarm, the failed-attempt counter, the one-time encrypted
 * payload, the DPoP `jti`s seen and the agents waiting on the return channel; see
 * durable-objects/request/README.md for the tables. The rules are core/request-state.ts's whole
 * transitions: this class stores what they return, inside one transaction, and carries out their
 * answer (audit, announce, ping). The alarm erases everything at the original expiry.
 */
import { DurableObject } from "cloudflare:workers";
import * as transitions from "../../core/request-state";
import { deliveryGraceMs } from "../../core/limits";
import { REVOKED_KEY_HASH, isExpired, wakeAt, type AckAnswer, type RequestState } from "../../core/request-state";
import type { AuditEventInput } from "../account/account-types";
import { MIGRATE_TO_V1_1, MIGRATE_TO_V1_2, SCHEMA, recordOf, type Row } from "./request-schema";
import { actorDetail, factsOf, keptAnswerOf, summaryOf, tombstoneOf, viewOf } from "./request-views";
import { WAIT_CLIENT, WAIT_HANDLE_TAG, announceOn, parseClient, refusal } from "./wait-channel";
import type {
  Actor,
  CreateResult,
  DecideInput,
  DecideResult,
  LookupResult,
  PollProof,
  PollResult,
  RequestDetails,
  RequestRecord,
  WaitMessage,
} from "./request-types";

export type { Actor } from "./request-types";

export class RequestDO extends DurableObject<Env> {
  /** The row, mirrored in memory: this object is its only writer. `null`: no request (or erased). */
  #record: RequestRecord | null = null;
  /** When the previous poll arrived. Memory only: losing it on eviction forgets one throttle. */
  #lastPollAt: number | null = null;
  /** The `jti`s of this request's DPoP proofs (RFC 9449 §11.1), mirrored from `dpop_jti`. */
  #jtis = new Set<string>();
  /** How long a bound delivery is kept for its key (`DELIVERY_GRACE_SECONDS`). */
  readonly #graceMs: number;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#graceMs = deliveryGraceMs(env.DELIVERY_GRACE_SECONDS);
    ctx.blockConcurrencyWhile(async () => this.#load());
  }

  async create(input: { details: RequestDetails; handleTag: string; expiresAt: number; interval: number }): Promise<CreateResult> {
    // A live request, or a delivered one's tombstone, holds the name until its expiry.
    if (this.#record && !isExpired(this.#record, Date.now())) return { reason: "collision" };
    const sql = this.ctx.storage.sql;
    this.ctx.storage.transactionSync(() => {
      // The object holds one request at a time: a new one replaces the tables of an earlier one.
      sql.exec("DROP TABLE IF EXISTS request");
      sql.exec("DROP TABLE IF EXISTS dpop_jti");
      for (const statement of SCHEMA) sql.exec(statement);
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
      replayReported: false,
      graceEndsAt: null,
      details: input.details,
      handleTag: input.handleTag,
    };
    this.#lastPollAt = null;
    this.#jtis = new Set();
    await this.ctx.storage.setAlarm(input.expiresAt);
    return { reason: "created" };
  }

  /**
   * A poll with the device code or auth_req_id (RFC 8628 §3.4). The hot path: memory only, except
   * a write when the state changes (slow_down's raised interval, a bound request's `jti`, delivery).
   * `client` is given on the OAuth token endpoint; `proof` when the poll carried a valid DPoP proof.
   */
  poll(handleTag: string, client: { agentId: string; keyHash: string } | null, proof: PollProof | null = null, actor: Actor | null = null): PollResult {
    const record = this.#record;
    if (!record) return { reason: "invalid_grant" };
    const now = Date.now();
    const facts = factsOf(record);
    const dpop = proof && { jkt: proof.jkt, jtiSeen: this.#jtis.has(proof.jti) };
    const input = { tagMatches: record.handleTag === handleTag, client, dpop, lastPollAt: this.#lastPollAt, graceMs: this.#graceMs };
    const { next, answer } = transitions.poll(record, facts, input, now);
    switch (answer.reason) {
      case "invalid_grant":
        if (answer.replay) {
          this.#store(record, next);
          this.#audit(record, { type: "replay_detected", detail: actor ? actorDetail(actor) : {} });
        }
        return { reason: "invalid_grant" };
      case "invalid_client":
      case "invalid_dpop_proof":
      case "expired_token":
        // Not a poll of this request by its agent: it consumes nothing, not even the throttle.
        return answer;
      case "deliver":
        this.#lastPollAt = now;
        return this.#deliver(record, next, proof);
      case "redeliver":
        // Only a poll with a proof by the bound key is redelivered to.
        return this.#redeliver(record, proof!, actor);
      default:
        this.#lastPollAt = now;
        this.#store(record, next, { proof: facts.dpopJkt !== null ? proof : null });
        return answer;
    }
  }

  /**
   * Returns the payload and, in the same synchronous step, leaves only a tombstone: the handle's tag,
   * the expiry and what the audit summary needs. Exactly once, however many polls race. A bound
   * request in its grace window (`next.graceEndsAt`) keeps the payload, what reopens it and its
   * proofs' `jti`s (this one's too) until the alarm at the window's end or an acknowledgement.
   */
  #deliver(record: RequestRecord, next: RequestState, proof: PollProof | null): PollResult {
    const keep = next.graceEndsAt !== null;
    const left = keep ? keptAnswerOf(record.details) : tombstoneOf(record.details);
    const sql = this.ctx.storage.sql;
    const payload = this.ctx.storage.transactionSync(() => {
      const row = sql.exec<{ payload: string | null }>("SELECT payload FROM request").toArray()[0];
      sql.exec(
        "UPDATE request SET status = ?, claim_hash = NULL, grace_ends_at = ?, payload = CASE WHEN ? THEN payload END, details = ?",
        next.status,
        next.graceEndsAt,
        keep ? 1 : 0,
        JSON.stringify(left),
      );
      if (!keep) sql.exec("DELETE FROM dpop_jti");
      else if (proof) sql.exec("INSERT OR IGNORE INTO dpop_jti (jti) VALUES (?)", proof.jti);
      return row?.payload ?? null;
    });
    const { details } = record;
    Object.assign(record, next, { details: left });
    if (keep) {
      if (proof) this.#jtis.add(proof.jti);
      void this.ctx.storage.setAlarm(wakeAt(next));
    } else {
      this.#jtis.clear();
    }
    if (payload === null) return { reason: "invalid_grant" };
    this.#audit(record, { type: "delivered", release: true });
    return { reason: "delivered", details, payload };
  }

  /** The kept answer again, to a fresh proof by the bound key within the window (core/request-state.ts `poll`). */
  #redeliver(record: RequestRecord, proof: PollProof, actor: Actor | null): PollResult {
    const sql = this.ctx.storage.sql;
    const payload = sql.exec<{ payload: string | null }>("SELECT payload FROM request").toArray()[0]?.payload ?? null;
    if (payload === null) return { reason: "invalid_grant" };
    sql.exec("INSERT OR IGNORE INTO dpop_jti (jti) VALUES (?)", proof.jti);
    this.#jtis.add(proof.jti);
    this.#audit(record, { type: "redelivered", detail: actor ? actorDetail(actor) : {} });
    return { reason: "delivered", details: record.details, payload };
  }

  /** `POST /v1/credentials/ack`: the agent stored its credential, so the kept answer goes now (core/request-state.ts `acknowledge`). */
  async acknowledge(handleTag: string, proof: PollProof | null): Promise<AckAnswer> {
    const record = this.#record;
    if (!record) return { reason: "invalid_grant" };
    const dpop = proof && { jkt: proof.jkt, jtiSeen: this.#jtis.has(proof.jti) };
    const { next, answer } = transitions.acknowledge(record, factsOf(record), { tagMatches: record.handleTag === handleTag, dpop }, Date.now());
    if (next !== record) await this.#endGrace(record, next);
    return answer;
  }

  /** Erases the kept answer, leaving the tombstone until expiry; the alarm moves to the expiry. */
  async #endGrace(record: RequestRecord, next: RequestState): Promise<void> {
    const tombstone = tombstoneOf(record.details);
    const sql = this.ctx.storage.sql;
    this.ctx.storage.transactionSync(() => {
      sql.exec("UPDATE request SET grace_ends_at = NULL, payload = NULL, details = ?", JSON.stringify(tombstone));
      sql.exec("DELETE FROM dpop_jti");
    });
    Object.assign(record, next, { details: tombstone });
    this.#jtis.clear();
    await this.ctx.storage.setAlarm(wakeAt(next));
  }

  /** The operator's look-up: by code and email, or by a signed approval link (`email` null). */
  async lookup(input: { email: string | null; linkRequestId: string | null; sessionHash: string; actor: Actor }): Promise<LookupResult> {
    const record = this.#record;
    if (!record) return { reason: "not_found" };
    const { next, answer } = transitions.lookup(record, factsOf(record), input, Date.now());
    this.#store(record, next);
    switch (answer.reason) {
      case "wrong_email":
        this.#audit(record, {
          type: answer.locked ? "locked" : "attempt_failed",
          detail: { ...actorDetail(input.actor), failed_attempts: answer.failedAttempts },
          release: answer.locked,
        });
        if (answer.locked) this.#announce(record, { type: "decided", status: "denied" });
        return { reason: "wrong_email", locked: answer.locked };
      case "ok":
        this.#audit(record, { type: "looked_up", detail: actorDetail(input.actor) });
        return { reason: "ok", view: viewOf(record) };
      default:
        return answer;
    }
  }

  /** Approve (with the payload already encrypted to `encryptionKey`) or deny. */
  async decide(input: DecideInput): Promise<DecideResult> {
    const record = this.#record;
    if (!record) return { reason: "invalid_token" };
    const { next, answer } = transitions.decide(record, factsOf(record), input, Date.now());
    if (answer.reason === "invalid_token") return { reason: "invalid_token" };
    // State and payload in one row write.
    this.#store(record, next, { payload: answer.reason === "approved" ? input.payload : null });
    const status = answer.reason;
    this.#audit(record, {
      type: status,
      actor: record.details.operatorEmail,
      detail: actorDetail(input.actor),
      release: status === "denied",
      // CIBA Core §10.2: the account's outbox pings the agent, durably.
      ...(record.details.ping ? { ping: record.details.ping } : {}),
    });
    // After the commit: the agent's next poll is served at once (README, "Contract notes": the return channel).
    this.#announce(record, { type: "decided", status });
    return { reason: status, details: record.details };
  }

  /** The agent was deleted: the request ends as denied and its key no longer matches anything. Idempotent. */
  async revoke(): Promise<void> {
    const record = this.#record;
    if (!record) return;
    const { next, answer } = transitions.revoke(record, factsOf(record), Date.now());
    if (answer.reason === "unchanged") return;
    const details = { ...record.details, apiKeyHash: REVOKED_KEY_HASH };
    this.ctx.storage.transactionSync(() => {
      this.#store(record, next);
      this.ctx.storage.sql.exec("UPDATE request SET payload = NULL, details = ?", JSON.stringify(details));
    });
    record.details = details;
    if (answer.wasLive) this.#announce(record, { type: "decided", status: "denied" });
  }

  /**
   * The return channel (README, "Contract notes"): the worker has checked the handle and forwards the upgrade
   * with its tag. A finished request is refused before the upgrade with the poll's reason; a live
   * one keeps the socket through the Hibernation API, tagged with the handle's tag, so a waiting
   * agent costs no object in memory. An already decided request is announced at once.
   */
  override async fetch(request: Request): Promise<Response> {
    const record = this.#record;
    const now = Date.now();
    const tag = request.headers.get(WAIT_HANDLE_TAG);
    const client = parseClient(request.headers.get(WAIT_CLIENT));
    if (!record || !tag || record.handleTag !== tag) return refusal(record && tag && isExpired(record, now) ? "expired_token" : "invalid_grant");
    if (client && client.agentId !== record.details.agent.id) return refusal("invalid_grant");
    if (client && client.keyHash !== record.details.apiKeyHash) return refusal("invalid_client");
    if (isExpired(record, now)) return refusal("expired_token");
    if (record.status === "delivered") return refusal("invalid_grant");
    if (record.status === "denied") return refusal("access_denied");
    const [clientEnd, serverEnd] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(serverEnd, [tag]);
    if (record.status === "approved") announceOn(serverEnd, { type: "decided", status: "approved" });
    return new Response(null, { status: 101, webSocket: clientEnd, headers: { "Sec-WebSocket-Protocol": "keyferry.v1" } });
  }

  /** The socket only listens: whatever the agent sends is ignored. */
  override async webSocketMessage(): Promise<void> {}

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code);
    } catch {
      // already closed
    }
  }

  override async webSocketError(): Promise<void> {}

  /** The grace window's end erases the kept answer; the TTL tells waiting agents, then erases everything, tombstone included (DESIGN.md). */
  override async alarm(): Promise<void> {
    const record = this.#record;
    const now = Date.now();
    if (record && !isExpired(record, now)) {
      const { next, answer } = transitions.endGrace(record, now);
      if (answer.reason === "ended") await this.#endGrace(record, next);
      else await this.ctx.storage.setAlarm(wakeAt(record));
      return;
    }
    if (record && (record.status === "pending" || record.status === "approved")) {
      this.#audit(record, { type: "expired", release: true });
    }
    for (const ws of this.ctx.getWebSockets()) announceOn(ws, { type: "expired" });
    this.#record = null;
    this.#jtis = new Set();
    await this.ctx.storage.deleteAll();
  }

  #announce(record: RequestRecord, message: WaitMessage): void {
    for (const ws of this.ctx.getWebSockets(record.handleTag)) announceOn(ws, message);
  }

  #load(): void {
    const sql = this.ctx.storage.sql;
    const tables = new Set(sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").toArray().map((t) => t.name));
    // A request made before v1.1 lives on (at most one TTL) in the table shape it was made with.
    if (tables.has("request") && !tables.has("dpop_jti")) for (const statement of MIGRATE_TO_V1_1) sql.exec(statement);
    let row = tables.has("request") ? sql.exec<Row>("SELECT * FROM request").toArray()[0] : undefined;
    if (row && !("grace_ends_at" in row)) {
      for (const statement of MIGRATE_TO_V1_2) sql.exec(statement);
      row = { ...row, grace_ends_at: null };
    }
    this.#record = row ? recordOf(row) : null;
    this.#jtis = new Set(row ? sql.exec<{ jti: string }>("SELECT jti FROM dpop_jti").toArray().map((r) => r.jti) : []);
  }

  /**
   * Stores what a transition changed (nothing, for most polls) and mirrors it in memory; a bound
   * poll's `jti` too, and an approval's payload in the same row write as its state.
   */
  #store(record: RequestRecord, next: RequestState, extra: { proof?: PollProof | null; payload?: string | null } = {}): void {
    const sql = this.ctx.storage.sql;
    if (extra.proof) {
      sql.exec("INSERT OR IGNORE INTO dpop_jti (jti) VALUES (?)", extra.proof.jti);
      this.#jtis.add(extra.proof.jti);
    }
    if (next === record) return;
    sql.exec(
      "UPDATE request SET status = ?, interval = ?, failed_attempts = ?, claim_hash = ?, replay_reported = ?, grace_ends_at = ?, payload = COALESCE(?, payload)",
      next.status,
      next.interval,
      next.failedAttempts,
      next.claimHash,
      next.replayReported ? 1 : 0,
      next.graceEndsAt,
      extra.payload ?? null,
    );
    Object.assign(record, next);
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

