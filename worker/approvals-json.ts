/**
 * A request that needs several operators (README, "Approval policies (N-of-M)"), on the wire: how many
 * approvals, who has approved, and once someone has, the digest of the stored credential that a later
 * approver's passkey signs. The console's list and the approval page's look-up answer alike.
 */
import type { ConsoleApprovals } from "../durable-objects/account/console-approvals";
import type { ApprovalsBody } from "../core/wire";

export function approvalsJson(approvals: ConsoleApprovals | undefined): ApprovalsBody {
  if (!approvals) return {};
  return {
    approvals_required: approvals.required,
    approvals: approvals.approvers.map((a) => ({ operator_id: a.operatorId, email: a.email })),
    ...(approvals.payloadSha256 !== null ? { payload_sha256: approvals.payloadSha256 } : {}),
  };
}
