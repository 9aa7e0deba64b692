/**
 * Which audit events are noise: anyone with a key can make refusals, anyone with a user code failed
 * attempts. They are counted, one row per key and window (`detail.count`, `detail.last_at`), and
 * evicted only among themselves, so they can never push a decision (`looked_up`, `approved`,
 * `denied`, `locked`, `delivered`, `expired`, `replay_detected`) or an admin change out of the log.
 */
import type { AuditEventInput } from "./account-types";

/** Non-noise events kept, newest first. */
export const AUDIT_LIMIT = 1000;
/** Noise rows kept, newest first: each is already a count over a window. */
export const AUDIT_NOISE_LIMIT = 200;
/** A run of the same noise is one event for this long from its first occurrence. */
export const AUDIT_NOISE_WINDOW_MS = 10 * 60 * 1000;

/** The key repeated noise is counted under, or null for an event that is always its own row. */
export function noiseKey(event: Pick<AuditEventInput, "type" | "agentId" | "requestId" | "detail">): string | null {
  switch (event.type) {
    case "request_refused":
      return `request_refused:${event.agentId ?? ""}:${String(event.detail?.reason ?? "")}`;
    case "attempt_failed":
      return `attempt_failed:${event.requestId ?? ""}`;
    default:
      return null;
  }
}
