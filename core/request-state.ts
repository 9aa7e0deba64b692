/**
 * The credential request state machine (DESIGN.md), as pure functions with `now` injected.
 * The RequestDO applies them inside one storage transaction; nothing here does I/O.
 *
 *   pending ── approve ──► approved ── poll ──► delivered
 *      ├────── deny / 5 failed look-ups / revoke ──► denied
 *      └────── expires_at ──► expired (the alarm erases everything)
 */
import { MAX_FAILED_ATTEMPTS, SLOW_DOWN_STEP_SECONDS } from "./limits";

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
}

export const isExpired = (state: RequestState, now: number) => now >= state.expiresAt;

export type PollOutcome =
  | { reason: "authorization_pending" }
  | { reason: "slow_down"; interval: number }
  | { reason: "access_denied" }
  | { reason: "expired_token" }
  | { reason: "invalid_grant" }
  | { reason: "deliver" };

/**
 * One poll (RFC 8628 §3.4–3.5). `lastPollAt` is when the previous poll arrived, whatever it was
 * answered; the first poll is never early. An early poll answers slow_down and raises the interval.
 */
export function pollOutcome(state: RequestState, lastPollAt: number | null, now: number): PollOutcome {
  if (isExpired(state, now)) return { reason: "expired_token" };
  if (state.status === "denied") return { reason: "access_denied" };
  if (state.status === "delivered") return { reason: "invalid_grant" };
  if (lastPollAt !== null && now - lastPollAt < state.interval * 1000) {
    return { reason: "slow_down", interval: state.interval + SLOW_DOWN_STEP_SECONDS };
  }
  return state.status === "approved" ? { reason: "deliver" } : { reason: "authorization_pending" };
}

export type LookupOutcome =
  | { reason: "ok"; claimHash: string }
  | { reason: "not_found" }
  | { reason: "locked" }
  | { reason: "already_claimed" }
  | { reason: "wrong_email"; failedAttempts: number; locked: boolean };

/**
 * An operator's look-up. A claimed request answers only the session that claimed it (that refusal is
 * not a failed attempt); a wrong email is one, and the fifth locks the request as denied.
 */
export function lookupOutcome(
  state: RequestState,
  input: { sessionHash: string; emailMatches: boolean },
  now: number,
): LookupOutcome {
  if (isExpired(state, now)) return { reason: "not_found" };
  if (state.failedAttempts >= MAX_FAILED_ATTEMPTS) return { reason: "locked" };
  if (state.status !== "pending") return { reason: "not_found" };
  if (state.claimHash !== null && state.claimHash !== input.sessionHash) return { reason: "already_claimed" };
  if (!input.emailMatches) {
    const failedAttempts = state.failedAttempts + 1;
    return { reason: "wrong_email", failedAttempts, locked: failedAttempts >= MAX_FAILED_ATTEMPTS };
  }
  return { reason: "ok", claimHash: input.sessionHash };
}

export type DecideOutcome = { reason: "approved" } | { reason: "denied" } | { reason: "invalid_token" };

/** The operator's explicit decision; only the claiming session may make it, and only once. */
export function decideOutcome(
  state: RequestState,
  input: { sessionHash: string; decision: "approve" | "deny" },
  now: number,
): DecideOutcome {
  if (isExpired(state, now) || state.status !== "pending" || state.claimHash !== input.sessionHash) {
    return { reason: "invalid_token" };
  }
  return input.decision === "approve" ? { reason: "approved" } : { reason: "denied" };
}
