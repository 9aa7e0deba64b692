/**
 * The credential request state machine (DESIGN.md) as whole transitions: each takes the request,
 * the call's input and `now`, and returns the next state and the answer. The RequestDO only stores
 * the next state (inside `transactionSync`) and carries out what the answer says; nothing here does I/O.
 *
 *   pending ── approve ──► approved ── poll ──► delivered (a tombstone until expires_at)
 *                                   a DPoP-bound one keeps its answer for the grace window first:
 *                                   redelivered to its key, erased by ack or at the window's end
 *      ├────── deny / 5 failed look-ups / revoke ──► denied
 *      └────── expires_at ──► expired (the alarm erases everything, tombstone included)
 */
import { MAX_FAILED_ATTEMPTS, SLOW_DOWN_STEP_SECONDS } from "./limits";

/** `delivered` is stored: the tombstone that lets a replayed handle be noticed (README, "Contract notes": replay alarm). */
export type RequestStatus = "pending" | "approved" | "delivered" | "denied";

export interface RequestState {
  status: RequestStatus;
  /** Unix milliseconds. */
  expiresAt: number;
  /** Current polling interval in seconds (RFC 8628 §3.2); raised by slow_down. */
  interval: number;
  failedAttempts: number;
  /** Hash of the approval session that claimed the request (RFC 8628 §5.5), once claimed. */
  claimHash: string | null;
  /** A replay of the delivered handle was reported: the operator hears of it once. */
  replayReported: boolean;
  /**
   * Unix ms: until then a delivered, DPoP-bound request keeps its answer and redelivers it to a
   * proof by its key (README, "Nothing lost to a dropped response"); null once erased, or never kept.
   */
  graceEndsAt: number | null;
}

/** What a request is, fixed at creation (except the key hash, which a revocation voids). */
export interface RequestFacts {
  requestId: string;
  agentId: string;
  apiKeyHash: string;
  /** Lower-cased. */
  operatorEmail: string;
  protocol: "device" | "ciba";
  /** RFC 9449 §10: the thumbprint of the key every poll must prove; null for an unbound request. */
  dpopJkt: string | null;
}

export interface Transition<A> {
  /** The state to store; the same object when nothing changes. */
  next: RequestState;
  answer: A;
}

export const isExpired = (state: RequestState, now: number) => now >= state.expiresAt;
/** The delivered answer is still kept (and may be redelivered) at `now`. */
export const inGrace = (state: RequestState, now: number) => state.graceEndsAt !== null && now < state.graceEndsAt && !isExpired(state, now);
/** When the object's alarm must next run: the grace window's end, else the expiry. */
export const wakeAt = (state: RequestState) => Math.min(state.graceEndsAt ?? state.expiresAt, state.expiresAt);
const same = <A>(state: RequestState, answer: A): Transition<A> => ({ next: state, answer });

export type PollAnswer =
  | { reason: "authorization_pending" | "access_denied" | "expired_token" | "invalid_client" | "invalid_dpop_proof" }
  | { reason: "invalid_grant"; replay: boolean }
  | { reason: "slow_down"; interval: number }
  | { reason: "deliver" | "redeliver" };

export interface PollInput {
  /** The handle's tag is this request's (not an earlier one's under the same user code). */
  tagMatches: boolean;
  /** Given on the OAuth token endpoint: the authenticated client must be the agent that asked. */
  client: { agentId: string; keyHash: string } | null;
  /** A checked proof (core/dpop.ts), with whether its `jti` was seen for this request before. */
  dpop: { jkt: string; jtiSeen: boolean } | null;
  /** When the previous poll arrived, whatever it was answered; null for the first. */
  lastPollAt: number | null;
  /** How long a bound request keeps its delivered answer (`DELIVERY_GRACE_SECONDS`); absent or 0: single delivery. */
  graceMs?: number;
}

/** RFC 9449 §4.3 and §11.1: a fresh proof (unseen `jti`) by the key the request is bound to. */
const provesBinding = (facts: RequestFacts, dpop: PollInput["dpop"]) =>
  facts.dpopJkt !== null && dpop !== null && dpop.jkt === facts.dpopJkt && !dpop.jtiSeen;

/**
 * One poll (RFC 8628 §3.4–3.5, CIBA Core §11). Only a pending request is throttled: a decided one
 * answers at once, so the poll that follows a return-channel announcement is never slow_down.
 * A proof failure consumes nothing (RFC 9449 §4.3): no state changes and the poll does not count.
 */
export function poll(state: RequestState, facts: RequestFacts, input: PollInput, now: number): Transition<PollAnswer> {
  if (!input.tagMatches) return same(state, isExpired(state, now) ? { reason: "expired_token" } : { reason: "invalid_grant", replay: false });
  if (isExpired(state, now)) return same(state, { reason: "expired_token" });
  if (state.status === "delivered") {
    // Within the grace window the bound key gets the same answer again: its first may have been lost.
    const ownClient = input.client === null || (input.client.agentId === facts.agentId && input.client.keyHash === facts.apiKeyHash);
    if (inGrace(state, now) && ownClient && provesBinding(facts, input.dpop)) return same(state, { reason: "redeliver" });
    // Someone holds a code that was already redeemed, whoever they claim to be: tell the operator, once.
    if (state.replayReported) return same(state, { reason: "invalid_grant", replay: false });
    return { next: { ...state, replayReported: true }, answer: { reason: "invalid_grant", replay: true } };
  }
  if (input.client) {
    if (input.client.agentId !== facts.agentId) return same(state, { reason: "invalid_grant", replay: false });
    if (input.client.keyHash !== facts.apiKeyHash) return same(state, { reason: "invalid_client" });
  }
  if (facts.dpopJkt !== null && !provesBinding(facts, input.dpop)) {
    return same(state, { reason: "invalid_dpop_proof" });
  }
  switch (state.status) {
    case "denied":
      return same(state, { reason: "access_denied" });
    case "approved": {
      const graceEndsAt = facts.dpopJkt !== null && input.graceMs ? Math.min(now + input.graceMs, state.expiresAt) : null;
      return { next: { ...state, status: "delivered", claimHash: null, graceEndsAt }, answer: { reason: "deliver" } };
    }
    case "pending":
      if (input.lastPollAt !== null && now - input.lastPollAt < state.interval * 1000) {
        const interval = state.interval + SLOW_DOWN_STEP_SECONDS;
        return { next: { ...state, interval }, answer: { reason: "slow_down", interval } };
      }
      return same(state, { reason: "authorization_pending" });
  }
}

export type AckAnswer =
  | { reason: "acknowledged" | "invalid_grant" | "expired_token" | "invalid_dpop_proof" | "not_bound" | "not_delivered" };

/**
 * The agent has stored what was delivered (`POST /v1/credentials/ack`): the grace window ends at
 * once. Only a fresh proof by the bound key may end it; acknowledging again, or after the window,
 * changes nothing and is still `acknowledged` (the agent may retry an ack whose answer it lost).
 */
export function acknowledge(state: RequestState, facts: RequestFacts, input: Pick<PollInput, "tagMatches" | "dpop">, now: number): Transition<AckAnswer> {
  if (!input.tagMatches) return same(state, isExpired(state, now) ? { reason: "expired_token" } : { reason: "invalid_grant" });
  if (isExpired(state, now)) return same(state, { reason: "expired_token" });
  if (facts.dpopJkt === null) return same(state, { reason: "not_bound" });
  if (!provesBinding(facts, input.dpop)) return same(state, { reason: "invalid_dpop_proof" });
  if (state.status !== "delivered") return same(state, { reason: "not_delivered" });
  return { next: state.graceEndsAt === null ? state : { ...state, graceEndsAt: null }, answer: { reason: "acknowledged" } };
}

/** The alarm at the grace window's end: the kept answer goes (`ended`), the tombstone stays until expiry. */
export function endGrace(state: RequestState, now: number): Transition<{ reason: "ended" | "unchanged" }> {
  if (state.graceEndsAt === null || now < state.graceEndsAt) return same(state, { reason: "unchanged" });
  return { next: { ...state, graceEndsAt: null }, answer: { reason: "ended" } };
}

export type LookupAnswer =
  | { reason: "ok" }
  | { reason: "not_found" | "locked" | "already_claimed" }
  | { reason: "wrong_email"; failedAttempts: number; locked: boolean };

export interface LookupInput {
  /** The typed email, or null for a look-up by signed approval link. */
  email: string | null;
  /** The request the approval link was made for; null for a typed code. */
  linkRequestId: string | null;
  sessionHash: string;
}

/**
 * An operator's look-up. A link names the request it was made for, so it cannot open a later
 * request under the same code; a pushed (CIBA) request has no code to type, only its link opens it.
 * A claimed request answers only the session that claimed it (that refusal is not a failed
 * attempt); a wrong email is one, and the fifth locks the request as denied.
 */
export function lookup(state: RequestState, facts: RequestFacts, input: LookupInput, now: number): Transition<LookupAnswer> {
  if (input.linkRequestId !== null && input.linkRequestId !== facts.requestId) return same(state, { reason: "not_found" });
  if (input.email !== null && facts.protocol === "ciba") return same(state, { reason: "not_found" });
  if (isExpired(state, now)) return same(state, { reason: "not_found" });
  if (state.failedAttempts >= MAX_FAILED_ATTEMPTS) return same(state, { reason: "locked" });
  if (state.status !== "pending") return same(state, { reason: "not_found" });
  if (state.claimHash !== null && state.claimHash !== input.sessionHash) return same(state, { reason: "already_claimed" });
  if (input.email !== null && input.email.trim().toLowerCase() !== facts.operatorEmail) {
    const failedAttempts = state.failedAttempts + 1;
    const locked = failedAttempts >= MAX_FAILED_ATTEMPTS;
    return { next: { ...state, failedAttempts, status: locked ? "denied" : state.status }, answer: { reason: "wrong_email", failedAttempts, locked } };
  }
  return { next: state.claimHash === null ? { ...state, claimHash: input.sessionHash } : state, answer: { reason: "ok" } };
}

export type DecideAnswer = { reason: "approved" | "denied" | "invalid_token" };

/**
 * The operator's explicit decision: only the claiming session may make it, only once, before
 * expiry, and only for the request its approval token was made for (`requestId`, when the token
 * carries one: a token cannot decide a later request under the same user code).
 */
export function decide(
  state: RequestState,
  facts: RequestFacts,
  input: { sessionHash: string; decision: "approve" | "deny"; requestId?: string | null },
  now: number,
): Transition<DecideAnswer> {
  if (input.requestId != null && input.requestId !== facts.requestId) return same(state, { reason: "invalid_token" });
  if (isExpired(state, now) || state.status !== "pending" || state.claimHash !== input.sessionHash) {
    return same(state, { reason: "invalid_token" });
  }
  const status = input.decision === "approve" ? "approved" : "denied";
  return { next: { ...state, status }, answer: { reason: status } };
}

export type RevokeAnswer = { reason: "revoked"; wasLive: boolean } | { reason: "unchanged" };

/**
 * The agent was deleted: the request ends as denied (its payload and its key hash go with it;
 * `wasLive`: it was still pending or approved, so a waiting agent is told). Idempotent: a delivered,
 * expired or already revoked request is left as it is.
 */
export function revoke(state: RequestState, facts: RequestFacts, now: number): Transition<RevokeAnswer> {
  if (isExpired(state, now) || state.status === "delivered" || facts.apiKeyHash === REVOKED_KEY_HASH) return same(state, { reason: "unchanged" });
  const wasLive = state.status === "pending" || state.status === "approved";
  return { next: { ...state, status: "denied" }, answer: { reason: "revoked", wasLive } };
}

/** What a revoked request's key hash becomes: no API key hashes to it, so its agent is refused. */
export const REVOKED_KEY_HASH = "revoked";
