/**
 * One Durable Object per credential request, addressed by `idFromName(user code)` (DESIGN.md).
 * It holds the request's state, its TTL alarm, the failed-attempt counter, the one-time encrypted
 * payload and the agents waiting on the return channel; see
 * durable-objects/request/README.md for its storage. The rules are core/request-state.ts's whole
 * transitions: this class stores what they return, inside one transaction, and carries out their
 * answer (audit, announce, ping). The alarm erases everything at the original expiry.
 */
import { DurableObject } from "cloudflare:workers";
import * as transitions from "../../core/request-state";
import { deliveryGraceMs } from "../../core/limits";
import { REVOKED_KEY_HASH, isExpired, wakeAt, type AckAnswer, type RequestState } from "../../core/request-state";
import { REQUEST_KEY, loadRecord, patchRow, readRow, storeState, type Row } from "./request-schema";
import { actorDetail, factsOf, keptAnswerOf, tombstoneOf, viewOf } from "./request-views";
import { accountOf, auditInBackground, lookedUpOf, type RequestEvent } from "./request-account";
import { judgeWithProof } from "./judge-with-proof";
import { DECISION_CHALLENGE_TTL_MS, DecisionChallenges, newChallenge } from "./decision-authority";
import { Decisions } from "./decisions";
import { forgetApprovals } from "./approval-progress";
import { acceptWait, announce, announceOn, answerClose, closeQuietly, refusal, waitInput } from "./wait-channel";
import type {
  Actor,
  CreateResult,
  DecideInput,
  DecideResult,
  DecisionChallengeResult,
  LookupResult,
  PollProof,
  PollResult,
  DeliveredRecord,
  LiveRecord,
  RequestDetails,
  RequestRecord,
} from "./request-types";

export type { Actor } from "./request-types";

export class RequestDO extends DurableObject<Env> {
  /** The row, mirrored in memory: this object is its only writer. `null`: no request (or erased). */
  #record: RequestRecord | null = null;
  /** When the previous poll arrived. Memory only: losing it on eviction forgets one throttle. */
  #lastPollAt: number | null = null;
  /** How long a bound delivery is kept for its key (`DELIVERY_GRACE_SECONDS`). */
  readonly #graceMs: number;
  /** Decision challenges issued and not yet used (./decision-authority.ts). */
  readonly #challenges = new DecisionChallenges(this.ctx.storage.sql);

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#graceMs = deliveryGraceMs(env.DELIVERY_GRACE_SECONDS);
    ctx.blockConcurrencyWhile(async () => this.#load());
  }

  async create(input: { details: RequestDetails; handleTag: string; expiresAt: number; interval: number }): Promise<CreateResult> {
    // A live request, or a delivered one's tombstone, holds the name until its expiry.
    if (this.#record && !isExpired(this.#record, Date.now())) return { reason: "collision" };
    const { storage } = this.ctx;
    const earlier = this.#record !== null;
    storage.transactionSync(() => {
      // The object holds one request at a time: a new one replaces an earlier one's value and
      // challenges (a new object, the common case, has none: no statement).
      if (earlier) storage.sql.exec("DROP TABLE IF EXISTS decision_challenges");
      this.#challenges.forget();
      storage.kv.put<Row>(REQUEST_KEY, {
        handle_tag: input.handleTag,
        status: "pending",
        expires_at: input.expiresAt,
        interval: input.interval,
        failed_attempts: 0,
        claim_hash: null,
        replay_reported: 0,
        grace_ends_at: null,
        details: JSON.stringify(input.details),
        payload: null,
        kept: null,
      });
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
    await this.ctx.storage.setAlarm(input.expiresAt);
    return { reason: "created" };
  }

  /**
   * A poll with the device code or auth_req_id (RFC 8628 §3.4). The hot path: memory only, except
   * a write when the state changes (slow_down's raised interval, delivery, the first replay) and,
   * for a bound request, the key's `jti` object's answer. `client` is given on the OAuth token
   * endpoint; `proof` when the poll carried a valid DPoP proof.
   */
  async poll(handleTag: string, client: { agentId: string; keyHash: string } | null, proof: PollProof | null = null, actor: Actor | null = null): Promise<PollResult> {
    const judged = await judgeWithProof(this.env, () => this.#record, proof, (record, dpop, now) =>
      transitions.poll(record, factsOf(record), { tagMatches: record.handleTag === handleTag, client, dpop, lastPollAt: this.#lastPollAt, graceMs: this.#graceMs }, now),
    );
    if (!judged) return { reason: "invalid_grant" };
    const { record, next, answer, now } = judged;
    switch (answer.reason) {
      case "invalid_grant":
        if (answer.replay) this.#replayed(record, next, actor);
        return { reason: "invalid_grant" };
      case "check_jti":
      case "invalid_dpop_proof":
        return { reason: "invalid_dpop_proof" };
      case "invalid_client":
      case "expired_token":
        // Not a poll of this request by its agent: it consumes nothing, not even the throttle.
        return answer;
      case "deliver":
        this.#lastPollAt = now;
        // Only an approved (live) request is delivered.
        return record.status === "delivered" ? { reason: "invalid_grant" } : this.#deliver(record, next);
      case "redeliver":
        // Only a delivered request in its grace window, to a fresh proof by its key, is redelivered to.
        return record.status === "delivered" ? this.#redeliver(record, actor) : { reason: "invalid_grant" };
      default:
        this.#lastPollAt = now;
        this.#store(record, next);
        return answer;
    }
  }

  /** A delivered handle came back: the first time, the operator hears of it (`replay_detected`). */
  #replayed(record: RequestRecord, next: RequestState, actor: Actor | null): void {
    this.#store(record, next);
    this.#audit(record, { type: "replay_detected", detail: actor ? actorDetail(actor) : {} });
  }

  /**
   * Returns the payload and, in the same synchronous step, leaves only a tombstone: the handle's tag,
   * the expiry and what the audit summary needs. Exactly once, however many polls race. A bound
   * request with a grace window (`next.graceEndsAt`) also keeps its answer (`kept`: the payload and
   * what opens it) until the alarm at the window's end or an acknowledgement.
   */
  async #deliver(record: LiveRecord, next: RequestState): Promise<PollResult> {
    const tombstone = tombstoneOf(record.details);
    const { kv } = this.ctx.storage;
    // Read and erase in one synchronous step (no await between them): no other event runs in between.
    const { payload, kept } = this.ctx.storage.transactionSync(() => {
      const payload = readRow(kv)?.payload ?? null;
      const kept = next.graceEndsAt !== null && payload !== null ? keptAnswerOf(record.details, payload) : null;
      patchRow(kv, {
        status: next.status,
        claim_hash: null,
        payload: null,
        details: JSON.stringify(tombstone),
        grace_ends_at: kept && next.graceEndsAt,
        kept: kept && JSON.stringify(kept),
      });
      return { payload, kept };
    });
    const { details } = record;
    const delivered: DeliveredRecord = { ...next, status: "delivered", graceEndsAt: kept && next.graceEndsAt, details: tombstone, handleTag: record.handleTag, kept };
    this.#record = delivered;
    if (kept) await this.ctx.storage.setAlarm(wakeAt(delivered));
    if (payload === null) return { reason: "invalid_grant" };
    this.#audit(delivered, { type: "delivered" });
    return { reason: "delivered", details, payload };
  }

  /**
   * The kept answer again, to a fresh proof by the bound key within the window (core/request-state.ts
   * `poll`); that proof's `jti` is already its key's (DpopJtiDO), so it never gets a second one.
   */
  #redeliver(record: DeliveredRecord, actor: Actor | null): PollResult {
    const { kept } = record;
    if (!kept) return { reason: "invalid_grant" };
    this.#audit(record, { type: "redelivered", detail: actor ? actorDetail(actor) : {} });
    const { payload, publicKey, wrappedPrivateKey } = kept;
    return { reason: "delivered", details: { ...record.details, publicKey, wrappedPrivateKey }, payload };
  }

  /** `POST /v1/credentials/ack`: the agent stored its credential, so the kept answer goes now (core/request-state.ts `acknowledge`). */
  async acknowledge(handleTag: string, proof: PollProof): Promise<Exclude<AckAnswer, { reason: "check_jti" }>> {
    const judged = await judgeWithProof(this.env, () => this.#record, proof, (record, dpop, now) =>
      transitions.acknowledge(record, factsOf(record), { tagMatches: record.handleTag === handleTag, dpop }, now),
    );
    if (!judged) return { reason: "invalid_grant" };
    const { record, next, answer } = judged;
    if (answer.reason === "check_jti") return { reason: "invalid_dpop_proof" };
    if (next !== record && record.status === "delivered") await this.#endGrace(record, next);
    return answer;
  }

  /** Erases the kept answer, leaving the tombstone until expiry; the alarm moves to the expiry. */
  async #endGrace(record: DeliveredRecord, next: RequestState): Promise<void> {
    patchRow(this.ctx.storage.kv, { grace_ends_at: null, kept: null });
    Object.assign(record, next, { kept: null });
    await this.ctx.storage.setAlarm(wakeAt(next));
  }

  /** The operator's look-up: by code and email, or by a signed approval link (`email` null). */
  async lookup(input: { email: string | null; linkRequestId: string | null; sessionHash: string; actor: Actor }): Promise<LookupResult> {
    const claimed = this.#live();
    if (!claimed) return { reason: "not_found" };
    // The account is asked whether it has passkeys only for a request claimed by another browser
    // (core's `lookup`), or one issued before its details said (the page is told; decide asks again).
    const ask = (claimed.claimHash !== null && claimed.claimHash !== input.sessionHash) || claimed.details.passkeyRequired === undefined;
    const passkeyAccount = ask ? (await accountOf(this.env, claimed.details.accountId).decisionPasskeys()).required : false;
    const record = this.#live();
    if (!record) return { reason: "not_found" };
    const now = Date.now();
    const { next, answer } = transitions.lookup(record, factsOf(record), { ...input, passkeyAccount }, now);
    // The look-up that claims the request is kept with the claim, and audited with what follows.
    const claims = answer.reason === "ok" && next.claimHash !== record.claimHash;
    this.#store(record, next, claims ? { details: { ...record.details, lookedUp: { at: now, detail: actorDetail(input.actor) } } } : {});
    switch (answer.reason) {
      case "wrong_email":
        this.#audit(record, {
          type: answer.locked ? "locked" : "attempt_failed",
          detail: { ...actorDetail(input.actor), failed_attempts: answer.failedAttempts },
        });
        if (answer.locked) {
          forgetApprovals(this.ctx.storage.kv, record);
          announce(this.ctx, record.handleTag, { type: "decided", status: "denied" });
        }
        return { reason: "wrong_email", locked: answer.locked };
      case "ok":
        return { reason: "ok", view: viewOf(record, ask ? passkeyAccount : record.details.passkeyRequired === true) };
      default:
        return answer;
    }
  }

  /**
   * A decision challenge (README, "Operators and passkeys"): single use, 5 minutes, committing to
   * this request, the decision and the payload's digest; allowCredentials are the account's passkeys.
   */
  async challenge(input: { requestId: string; decision: "approve" | "deny"; payloadSha256: string | null }): Promise<DecisionChallengeResult> {
    const open = () => this.#record && this.#record.details.requestId === input.requestId && this.#record.status === "pending" && !isExpired(this.#record, Date.now());
    if (!open()) return { reason: "invalid_token" };
    const passkeys = await accountOf(this.env, this.#record!.details.accountId).decisionPasskeys();
    if (!passkeys.required) return { reason: "not_enrolled" };
    const commitment = { requestId: input.requestId, decision: input.decision, payloadSha256: input.payloadSha256 };
    const challenge = await newChallenge(commitment);
    if (!open()) return { reason: "invalid_token" };
    this.#challenges.store(challenge, { ...commitment, expiresAt: Date.now() + DECISION_CHALLENGE_TTL_MS }, Date.now());
    return { reason: "ok", challenge, allowCredentials: passkeys.credentials };
  }

  /** Approve (with the payload already encrypted to `encryptionKey`) or deny, by a verified person (./decisions.ts). */
  async decide(input: DecideInput): Promise<DecideResult> {
    return new Decisions(this.ctx, this.env, this.#challenges, () => this.#live()).decide(input);
  }

  /** The agent was deleted: the request ends as denied and its key no longer matches anything. Idempotent. */
  async revoke(): Promise<void> {
    const record = this.#live();
    if (!record) return;
    const { next, answer } = transitions.revoke(record, factsOf(record), Date.now());
    if (answer.reason === "unchanged") return;
    const details = { ...record.details, apiKeyHash: REVOKED_KEY_HASH };
    // The state, the erased payload and the revoked key hash in one row write.
    this.#store(record, next, { details, payload: null });
    if (answer.wasLive) announce(this.ctx, record.handleTag, { type: "decided", status: "denied" });
  }

  /**
   * The return channel (README, "Return channel"): the worker has checked the handle and the proof
   * and forwards the upgrade with what it checked (wait-channel.ts). The poll's checks decide, in the
   * poll's order (core's `wait`); a refusal comes before the upgrade with the poll's reason. A live
   * request keeps the socket through the Hibernation API, tagged with the handle's tag, so a waiting
   * agent costs no object in memory; an already approved one is announced at once.
   */
  override async fetch(request: Request): Promise<Response> {
    const input = waitInput(request.headers);
    const judged = await judgeWithProof(this.env, () => this.#record, input.proof, (record, dpop, now) =>
      transitions.wait(record, factsOf(record), { tagMatches: record.handleTag === input.tag, client: input.client, dpop }, now),
    );
    if (!judged) return refusal("invalid_grant");
    const { record, next, answer } = judged;
    switch (answer.reason) {
      case "listen":
        break;
      case "invalid_grant":
        if (answer.replay) this.#replayed(record, next, input.actor);
        return refusal("invalid_grant");
      case "check_jti":
        return refusal("invalid_dpop_proof");
      default:
        return refusal(answer.reason);
    }
    return acceptWait(this.ctx, record.handleTag, answer.approved);
  }

  /** The socket only listens: anything the agent sends ends it (1008, RFC 6455 §7.4.1), so it cannot keep waking the object. */
  override async webSocketMessage(ws: WebSocket): Promise<void> {
    closeQuietly(ws, 1008, "the return channel only listens");
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    answerClose(ws, code);
  }

  override async webSocketError(): Promise<void> {}

  /** The grace window's end erases the kept answer; the TTL tells waiting agents, then erases everything, tombstone included (DESIGN.md). */
  override async alarm(): Promise<void> {
    const record = this.#record;
    const now = Date.now();
    if (record && !isExpired(record, now)) {
      const { next, answer } = transitions.endGrace(record, now);
      if (answer.reason === "ended" && record.status === "delivered") await this.#endGrace(record, next);
      else await this.ctx.storage.setAlarm(wakeAt(record));
      return;
    }
    if (record && (record.status === "pending" || record.status === "approved")) {
      this.#audit(record, { type: "expired", ...lookedUpOf(record) });
    }
    for (const ws of this.ctx.getWebSockets()) announceOn(ws, { type: "expired" });
    this.#record = null;
    await this.ctx.storage.deleteAll();
    this.#challenges.forget();
  }

  /** The request unless it is a delivered one's tombstone, which has nothing to look up, decide or revoke. */
  #live(): LiveRecord | null {
    const record = this.#record;
    return record && record.status !== "delivered" ? record : null;
  }

  #load(): void {
    this.#record = loadRecord(this.ctx.storage);
  }

  #store(record: RequestRecord, next: RequestState, extra: { details?: RequestDetails; payload?: null } = {}): void {
    storeState(this.ctx.storage.kv, record, next, extra);
  }

  #audit(record: RequestRecord, event: RequestEvent): void {
    auditInBackground(this.ctx, this.env, record, event);
  }
}
