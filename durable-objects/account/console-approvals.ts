/**
 * A request that needs several operators (README, "Approval policies (N-of-M)"), as the console lists
 * it: how many it needs, who has approved, and the digest of the first approver's credential that a
 * later approver's passkey signs. Kept in the request's console summary (./console-feed.ts), updated
 * by each `partially_approved` event in that event's transaction, so a listing stays one read.
 */
import type { ApprovalProgress } from "../../core/approval-policy";
import { requestedRowOf } from "./live-slots";

export interface ConsoleApprovals {
  required: number;
  /** base64url SHA-256 of the stored credential JWE; null before the first approval. */
  payloadSha256: string | null;
  approvers: Array<{ operatorId: string; email: string }>;
}

/** Writes the approvals so far into the pending request's summary, on its `requested` row (./live-slots.ts); true if the list changed. */
export function recordConsoleApproval(sql: SqlStorage, requestId: string, progress: ApprovalProgress, now: number): boolean {
  const row = requestedRowOf(sql, requestId, now);
  if (!row?.consoleView) return false;
  const view = JSON.parse(row.consoleView) as { approvals?: ConsoleApprovals };
  if (!view.approvals) return false;
  view.approvals = {
    required: view.approvals.required,
    payloadSha256: progress.payloadSha256,
    approvers: progress.approvers.map(({ operatorId, email }) => ({ operatorId, email })),
  };
  sql.exec("UPDATE audit SET console_view = ? WHERE seq = ?", JSON.stringify(view), row.seq);
  return true;
}
