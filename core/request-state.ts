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
import type { ApprovalProgress, Approver } from "./approval-policy";
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

/**
 * What a delivered request keeps until its expiry (README, "Contract notes": replay alarm): who asked
 * for what, for the replay alarm's audit event, and the API key's hash that tells its agent apart on
 * the token endpoint, and the DPoP key's thumbprint (a public key's hash) that checks a late
 * acknowledgement. No payload, no key, no user code, no operator email: nothing to read a credential
 * or a code from, by type. A bound delivery's kept answer is not here: its record holds it apart
 * for the grace window only (durable-objects/request/request-types.ts, `KeptAnswer`).
 */
export interface Tombstone {
  requestId: string;
  accountId: string;
  agent: { id: string; name: string; email: string | null };
  apiKeyHash: string;
  description: string;
  vaultKey: string;
  bindingMessage: string | null;
  protocol: "device" | "ciba";
  createdAt: number;
  dpopJkt: string | null;
}

/** What a request is, fixed at creation (except the key hash, which a revocation voids). */
export interface RequestFacts {
  requestId: string;
  agentId: string;
  apiKeyHash: string;
  /** Lower-cased; null for a delivered request (its tombstone keeps none). */
  operatorEmail: string | null;
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

/** Where a poll and a wait answer alike: the request is finished, the caller is not its agent, or the proof fails. */
export type GateAnswer =
  | { reason: "access_denied" | "expired_token" | "invalid_client" | "invalid_dpop_proof" }
  | { reason: "invalid_grant"; replay: boolean }
  /** The proof is by the request's key; whether its `jti` was seen before is unknown yet: ask, then try again. */
  | { reason: "check_jti" };

export type PollAnswer =
  | GateAnswer
  | { reason: "authorization_pending" }
  | { reason: "slow_down"; interval: number }
  | { reason: "deliver" | "redeliver" };

export interface PollInput {
  /** The handle's tag is this request's (not an earlier one's under the same user code). */
  tagMatches: boolean;
  /** Given on the OAuth token endpoint: the authenticated client must be the agent that asked. */
  client: { agentId: string; keyHash: string } | null;
  /**
   * A checked proof (core/dpop.ts), with whether its `jti` was seen before by its key (RFC 9449
   * §11.1, across requests); `jtiSeen: null` until that was asked (answered `check_jti`).
   */
  dpop: { jkt: string; jtiSeen: boolean | null } | null;
  /** When the previous poll arrived, whatever it was answered; null for the first. */
  lastPollAt: number | null;
  /** How long a bound request keeps its delivered answer (`DELIVERY_GRACE_SECONDS`); absent or 0: single delivery. */
  graceMs?: number;
}

/**
 * What a poll and a wait check first, in this order: the handle, the expiry, a delivered code (the
 * replay alarm, once, whoever asks), the client, the proof; then a denied request. `null`: a
 * pending or approved request its own agent asks about, with a fresh proof where it is bound, or a
 * delivered one in its grace window asked about with a fresh proof by its key.
 * A proof failure consumes nothing (RFC 9449 §4.3): no state changes.
 */
function gate(state: RequestState, facts: RequestFacts, input: Omit<PollInput, "lastPollAt">, now: number): Transition<GateAnswer> | null {
  if (!input.tagMatches) return same(state, isExpired(state, now) ? { reason: "expired_token" } : { reason: "invalid_grant", replay: false });
  if (isExpired(state, now)) return same(state, { reason: "expired_token" });
  if (state.status === "delivered") {
    // Within the grace window the bound key's fresh proof passes (a poll redelivers, its first answer
    // may have been lost); a used proof is a replay like any other (RFC 9449 §11.1).
    const ownClient = input.client === null || (input.client.agentId === facts.agentId && input.client.keyHash === facts.apiKeyHash);
    if (inGrace(state, now) && ownClient && facts.dpopJkt !== null && input.dpop?.jkt === facts.dpopJkt) {
      if (input.dpop.jtiSeen === null) return same(state, { reason: "check_jti" });
      if (!input.dpop.jtiSeen) return null;
    }
    // Someone holds a code that was already redeemed, whoever they claim to be: tell the operator, once.
    if (state.replayReported) return same(state, { reason: "invalid_grant", replay: false });
    return { next: { ...state, replayReported: true }, answer: { reason: "invalid_grant", replay: true } };
  }
  if (input.client) {
    if (input.client.agentId !== facts.agentId) return same(state, { reason: "invalid_grant", replay: false });
    if (input.client.keyHash !== facts.apiKeyHash) return same(state, { reason: "invalid_client" });
  }
  if (facts.dpopJkt !== null) {
    if (input.dpop === null || input.dpop.jkt !== facts.dpopJkt || input.dpop.jtiSeen === true) return same(state, { reason: "invalid_dpop_proof" });
    if (input.dpop.jtiSeen === null) return same(state, { reason: "check_jti" });
  }
  if (state.status === "denied") return same(state, { reason: "access_denied" });
  return null;
}

/**
 * One poll (RFC 8628 §3.4–3.5, CIBA Core §11). Only a pending request is throttled: a decided one
 * answers at once, so the poll that follows a return-channel announcement is never slow_down.
 */
export function poll(state: RequestState, facts: RequestFacts, input: PollInput, now: number): Transition<PollAnswer> {
  const refused = gate(state, facts, input, now);
  if (refused) return refused;
  if (state.status === "delivered") return same(state, { reason: "redeliver" });
  if (state.status === "approved") {
    const graceEndsAt = facts.dpopJkt !== null && input.graceMs ? Math.min(now + input.graceMs, state.expiresAt) : null;
    return { next: { ...state, status: "delivered", claimHash: null, graceEndsAt }, answer: { reason: "deliver" } };
  }
  if (input.lastPollAt !== null && now - input.lastPollAt < state.interval * 1000) {
    const interval = state.interval + SLOW_DOWN_STEP_SECONDS;
    return { next: { ...state, interval }, answer: { reason: "slow_down", interval } };
  }
  return same(state, { reason: "authorization_pending" });
}

export type WaitAnswer = GateAnswer | { reason: "listen"; approved: boolean };

/**
 * A wait on the return channel (README, "Return channel"): the poll's checks in the poll's order
 * (a wait on a delivered code raises the replay alarm as a poll would), then `listen` where a poll
 * would deliver or be pending. `approved`: announce it at once (the next poll delivers). In a
 * delivered request's grace window the bound key's fresh proof is refused like a delivered code but
 * raises no alarm: there is nothing to wait for, and its poll gets the kept answer.
 */
export function wait(state: RequestState, facts: RequestFacts, input: Omit<PollInput, "lastPollAt">, now: number): Transition<WaitAnswer> {
  const refused = gate(state, facts, input, now);
  if (refused) return refused;
  if (state.status === "delivered") return same(state, { reason: "invalid_grant", replay: false });
  return same(state, { reason: "listen", approved: state.status === "approved" });
}

export type AckAnswer =
  | { reason: "acknowledged" | "invalid_grant" | "expired_token" | "invalid_dpop_proof" | "not_bound" | "not_delivered" }
  /** As in the gate: a proof by the bound key whose `jti` is yet to be asked about. */
  | { reason: "check_jti" };

/**
 * The agent has stored what was delivered (`POST /v1/credentials/ack`): the grace window ends at
 * once. Only a fresh proof by the bound key may end it; acknowledging again, or after the window,
 * changes nothing and is still `acknowledged` (the agent may retry an ack whose answer it lost).
 */
export function acknowledge(state: RequestState, facts: RequestFacts, input: Pick<PollInput, "tagMatches" | "dpop">, now: number): Transition<AckAnswer> {
  if (!input.tagMatches) return same(state, isExpired(state, now) ? { reason: "expired_token" } : { reason: "invalid_grant" });
  if (isExpired(state, now)) return same(state, { reason: "expired_token" });
  if (facts.dpopJkt === null) return same(state, { reason: "not_bound" });
  const { dpop } = input;
  if (dpop === null || dpop.jkt !== facts.dpopJkt || dpop.jtiSeen === true) return same(state, { reason: "invalid_dpop_proof" });
  if (dpop.jtiSeen === null) return same(state, { reason: "check_jti" });
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
  /** The account has passkeys: its decisions need one, so a claim need not keep other browsers out. */
  passkeyAccount: boolean;
}

/**
 * An operator's look-up. A link names the request it was made for, so it cannot open a later
 * request under the same code; a pushed (CIBA) request has no code to type, only its link opens it.
 * A claimed request answers only the session that claimed it (RFC 8628 §5.5; that refusal is not
 * a failed attempt), unless the account has passkeys: then another browser (the first one's cookie
 * lost in a crash, or another device) may open it too, the claim staying where it is, and can decide
 * only with a passkey. A wrong email is a failed attempt, and the fifth locks the request as denied.
 */
export function lookup(state: RequestState, facts: RequestFacts, input: LookupInput, now: number): Transition<LookupAnswer> {
  if (input.linkRequestId !== null && input.linkRequestId !== facts.requestId) return same(state, { reason: "not_found" });
  if (input.email !== null && facts.protocol === "ciba") return same(state, { reason: "not_found" });
  if (isExpired(state, now)) return same(state, { reason: "not_found" });
  if (state.failedAttempts >= MAX_FAILED_ATTEMPTS) return same(state, { reason: "locked" });
  if (state.status !== "pending") return same(state, { reason: "not_found" });
  if (state.claimHash !== null && state.claimHash !== input.sessionHash && !input.passkeyAccount) return same(state, { reason: "already_claimed" });
  if (input.email !== null && input.email.trim().toLowerCase() !== facts.operatorEmail) {
    const failedAttempts = state.failedAttempts + 1;
    const locked = failedAttempts >= MAX_FAILED_ATTEMPTS;
    return { next: { ...state, failedAttempts, status: locked ? "denied" : state.status }, answer: { reason: "wrong_email", failedAttempts, locked } };
  }
  return { next: state.claimHash === null ? { ...state, claimHash: input.sessionHash } : state, answer: { reason: "ok" } };
}

export type DecideAnswer =
  /** `approvers`: a covered request's every approver (README, "Approval policies (N-of-M)"), the last one deciding. */
  | { reason: "approved"; approvers?: Approver[] }
  | { reason: "denied" }
  | { reason: "invalid_token" }
  | { reason: "access_denied" }
  | { reason: "passkey_required"; enrolled: boolean }
  /** A covered request got one more approval, not yet enough: the caller stores `progress` (and the first one's payload). */
  | { reason: "awaiting_approvals"; approvals: number; required: number; progress: ApprovalProgress }
  /** This operator already approved this covered request. */
  | { reason: "already_approved" }
  /** An approval without a credential, where no earlier approver gave one. */
  | { reason: "credential_required" }
  /** A later approval that sent a credential: the first approver's is the one delivered. */
  | { reason: "credential_not_expected" }
  /** A covered request under the email binding: distinct people can only be told apart by their passkeys. */
  | { reason: "policy_needs_passkeys"; required: number };

/**
 * Who is deciding (DESIGN.md, v1.2 "Who decides"), as the RequestDO established it before the
 * transition:
 * - `passkey`: an assertion whose signature verified against a passkey of the request's account
 *   (WebAuthn L3 §7.2), with what its single-use challenge committed to and the UV flag it carried;
 * - `unverified`: an assertion was sent but did not verify (unknown or removed passkey, another
 *   account's, a used or unknown challenge, a bad signature or counter);
 * - `missing`: the account has a passkey (`enrolled`), or the deployment requires one, and none was sent;
 * - `email_binding`: the account has no passkey and none is required: the v1 rule (the session that
 *   claimed the request after typing the operator's email) decides.
 */
export type DecisionAuthority =
  | { kind: "passkey"; userVerified: boolean; committed: DecisionCommitment; operator: Omit<Approver, "at"> }
  | { kind: "unverified" }
  | { kind: "missing"; enrolled: boolean }
  | { kind: "email_binding" };

/** What a decision challenge commits to; the assertion over it signs exactly this. */
export interface DecisionCommitment {
  requestId: string;
  decision: "approve" | "deny";
  /** base64url SHA-256 of the exact credential string sent with an approval; null for a denial. */
  payloadSha256: string | null;
  /** Unix ms: a challenge lasts 5 minutes. */
  expiresAt: number;
}

export interface DecideInput {
  /** The approval page's session (RFC 8628 §5.5 claim); null from the console. */
  sessionHash: string | null;
  decision: "approve" | "deny";
  /** The request the approval token was made for: a token cannot decide a later request under the same user code. */
  requestId?: string | null;
  /** base64url SHA-256 of the credential string sent with this decision; null when none was. */
  payloadSha256?: string | null;
  authority: DecisionAuthority;
  /**
   * N-of-M (README, "Approval policies (N-of-M)"): how many distinct operators the request needs,
   * fixed at issuance, and the approvals it has so far (null before the first). Absent: one.
   */
  approvals?: { required: number; progress: ApprovalProgress | null };
  /**
   * base64url SHA-256 of the payload this approval would store (the JWE the agent will receive), null
   * when it carries none: what later approvers sign. The same as `payloadSha256` for a
   * `credential_jwe`; for a plain value, the digest of the JWE it was encrypted into, so no digest of
   * a plaintext is ever shown to other operators.
   */
  storedPayloadSha256: string | null;
}

/**
 * The operator's explicit decision, only once, before expiry, for the request its token names, and
 * only by a verified person: a passkey assertion with user verification whose challenge committed
 * to this request, this decision and this payload; or, for an account without passkeys, the
 * session that claimed the request. Every refusal changes nothing (and counts no attempt).
 * A request covered by an approval policy needs that many distinct passkey-verified operators: the
 * first approval carries the credential, later ones sign its digest; until the count is met the
 * request stays pending (`awaiting_approvals`), and a denial by any of them ends it.
 */
export function decide(state: RequestState, facts: RequestFacts, input: DecideInput, now: number): Transition<DecideAnswer> {
  if (input.requestId != null && input.requestId !== facts.requestId) return same(state, { reason: "invalid_token" });
  if (isExpired(state, now) || state.status !== "pending") return same(state, { reason: "invalid_token" });
  const required = input.approvals?.required ?? 1;
  const progress = input.approvals?.progress ?? null;
  const approving = input.decision === "approve";
  if (approving && progress === null && input.storedPayloadSha256 === null) return same(state, { reason: "credential_required" });
  // The first approver's credential is the one delivered: a later approver brings none.
  if (approving && progress !== null && input.storedPayloadSha256 !== null) return same(state, { reason: "credential_not_expected" });
  // A later approver signs the digest of the credential the first one stored, not one of their own.
  const digest = approving && progress !== null ? progress.payloadSha256 : (input.payloadSha256 ?? null);
  const { authority } = input;
  switch (authority.kind) {
    case "missing":
      return same(state, { reason: "passkey_required", enrolled: authority.enrolled });
    case "unverified":
      return same(state, { reason: "access_denied" });
    case "passkey": {
      const signed = authority.committed;
      const signedFor = signed.requestId === facts.requestId && signed.decision === input.decision && signed.payloadSha256 === digest && now < signed.expiresAt;
      if (!signedFor || !authority.userVerified) return same(state, { reason: "access_denied" });
      break;
    }
    case "email_binding":
      if (input.sessionHash === null || state.claimHash !== input.sessionHash) return same(state, { reason: "invalid_token" });
  }
  if (!approving) return { next: { ...state, status: "denied" }, answer: { reason: "denied" } };
  if (required <= 1) return { next: { ...state, status: "approved" }, answer: { reason: "approved" } };
  if (authority.kind !== "passkey") return same(state, { reason: "policy_needs_passkeys", required });
  // Distinct people: each passkey names its operator, and one operator counts once however many passkeys they hold.
  if (progress?.approvers.some((approver) => approver.operatorId === authority.operator.operatorId)) return same(state, { reason: "already_approved" });
  const approvers = [...(progress?.approvers ?? []), { ...authority.operator, at: now }];
  if (approvers.length < required) {
    const payloadSha256 = progress?.payloadSha256 ?? input.storedPayloadSha256!;
    return same(state, { reason: "awaiting_approvals", approvals: approvers.length, required, progress: { payloadSha256, approvers } });
  }
  return { next: { ...state, status: "approved" }, answer: { reason: "approved", approvers } };
}

/**
 * A passkey decision on a request another session claimed (its browser crashed, or the operator went
 * to another device, or to the console): allowed, since the passkey proves the person, and audited
 * as `claim_taken_over`. Only meaningful for a decision `decide` accepted.
 */
export function takesOverClaim(state: RequestState, input: Pick<DecideInput, "sessionHash" | "authority">): boolean {
  return input.authority.kind === "passkey" && state.claimHash !== null && state.claimHash !== input.sessionHash;
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
