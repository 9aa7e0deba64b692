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
import { REVOKED_KEY_HASH, isExpired, type RequestState } from "../../core/request-state";
import type { AuditEventInput } from "../account/account-types";
import { MIGRATE_TO_V1_1, SCHEMA, recordOf, type Row } from "./request-schema";
import { actorDetail, factsOf, summaryOf, tombstoneOf, viewOf } from "./request-views";
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

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
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
      // `dpop_jti` only for a bound request: each table made is rows written (bench/README.md, "Cost per handoff").
      for (const statement of input.details.dpopJkt ? SCHEMA : SCHEMA.slice(0, 1)) sql.exec(statement);
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
    const input = { tagMatches: record.handleTag === handleTag, client, dpop, lastPollAt: this.#lastPollAt };
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
        return this.#deliver(record, next);
      default:
        this.#lastPollAt = now;
        this.#store(record, next, { proof: facts.dpopJkt !== null ? proof : null });
        return answer;
    }
  }

  /**
   * Returns the payload and, in the same synchronous step, leaves only a tombstone: the handle's tag,
   * the expiry and what the audit summary needs. Exactly once, however many polls race.
   */
  #deliver(record: RequestRecord, next: RequestState): PollResult {
    const tombstone = tombstoneOf(record.details);
    const sql = this.ctx.storage.sql;
    const payload = this.ctx.storage.transactionSync(() => {
      const row = sql.exec<{ payload: string | null }>("SELECT payload FROM request").toArray()[0];
      sql.exec("UPDATE request SET status = ?, claim_hash = NULL, payload = NULL, details = ?", next.status, JSON.stringify(tombstone));
      if (record.details.dpopJkt) sql.exec("DELETE FROM dpop_jti");
      return row?.payload ?? null;
    });
    const { details } = record;
    Object.assign(record, next, { details: tombstone });
    this.#jtis.clear();
    if (payload === null) return { reason: "invalid_grant" };
    this.#audit(record, { type: "delivered", release: true });
    return { reason: "delivered", details, payload };
  }

  /** The operator's look-up: by code and email, or by a signed approval link (`email` null). */
  async lookup(input: { email: string | null; linkRequestId: string | null; sessionHash: string; actor: Actor }): Promise<LookupResult> {
    const record = this.#record;
    if (!record) return { reason: "not_found" };
    const now = Date.now();
    const { next, answer } = transitions.lookup(record, factsOf(record), input, now);
    // The look-up that claims the request is kept with the claim, and audited with what follows.
    const claims = answer.reason === "ok" && next.claimHash !== record.claimHash;
    this.#store(record, next, claims ? { details: { ...record.details, lookedUp: { at: now, detail: actorDetail(input.actor) } } } : {});
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
      ...lookedUpOf(record),
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

  /** TTL: tell waiting agents, then erase everything, tombstone included (DESIGN.md). */
  override async alarm(): Promise<void> {
    const record = this.#record;
    if (record && !isExpired(record, Date.now())) {
      await this.ctx.storage.setAlarm(record.expiresAt);
      return;
    }
    if (record && (record.status === "pending" || record.status === "approved")) {
      this.#audit(record, { type: "expired", release: true, ...lookedUpOf(record) });
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
    const row = tables.has("request") ? sql.exec<Row>("SELECT * FROM request").toArray()[0] : undefined;
    // A request made before v1.1 lives on (at most one TTL) in the table shape it was made with.
    if (row && row.replay_reported === undefined) for (const statement of MIGRATE_TO_V1_1) sql.exec(statement);
    this.#record = row ? recordOf(row) : null;
    this.#jtis = new Set(row && (tables.has("dpop_jti") || row.replay_reported === undefined) ? sql.exec<{ jti: string }>("SELECT jti FROM dpop_jti").toArray().map((r) => r.jti) : []);
  }

  /**
   * Stores what a transition changed (nothing, for most polls) and mirrors it in memory; a bound
   * poll's `jti` too, and an approval's payload in the same row write as its state.
   */
  #store(record: RequestRecord, next: RequestState, extra: { proof?: PollProof | null; payload?: string | null; details?: RequestDetails } = {}): void {
    const sql = this.ctx.storage.sql;
    if (extra.proof) {
      sql.exec("INSERT OR IGNORE INTO dpop_jti (jti) VALUES (?)", extra.proof.jti);
      this.#jtis.add(extra.proof.jti);
    }
    if (next === record) return;
    sql.exec(
      "UPDATE request SET status = ?, interval = ?, failed_attempts = ?, claim_hash = ?, replay_reported = ?, payload = COALESCE(?, payload), details = COALESCE(?, details)",
      next.status,
      next.interval,
      next.failedAttempts,
      next.claimHash,
      next.replayReported ? 1 : 0,
      extra.payload ?? null,
      extra.details ? JSON.stringify(extra.details) : null,
    );
    Object.assign(record, next, extra.details ? { details: extra.details } : {});
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

/** The claiming look-up, for the event that follows it (RequestDetails.lookedUp). */
const lookedUpOf = (record: RequestRecord) => (record.details.lookedUp ? { lookedUp: record.details.lookedUp } : {});
