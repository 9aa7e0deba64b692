/**
 * The lines both the console and the approval page show for a request that needs several operators
 * (README, "Approval policies (N-of-M)"). Operator emails come from the server; callers set them as text.
 */
import type { ApprovalsBody } from "../../core/wire";

export function approvalsLines(request: ApprovalsBody): { count: string; approvers: string } | null {
  if (request.approvals_required === undefined) return null;
  const approvals = request.approvals ?? [];
  return {
    count: `${approvals.length} of ${request.approvals_required} approvals`,
    approvers:
      approvals.length > 0
        ? `Approved by ${approvals.map((approval) => approval.email).join(", ")}.`
        : `Needs ${request.approvals_required} different operators. The first one types the credential; the others then approve it without seeing it.`,
  };
}

export const SIGNS_STORED = "Another operator gave the credential, encrypted to the agent. Approving signs that same credential with your passkey; you do not see it.";
