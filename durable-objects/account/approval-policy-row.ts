/**
 * The account's approval policy (README, "Approval policies (N-of-M)") as its `account` row keeps it:
 * JSON in `approval_policy`, NULL for the default (one approval). Read at issuance, where it fixes
 * how many approvals the new request needs (core/approval-policy.ts).
 */
import { DEFAULT_APPROVAL_POLICY, type ApprovalPolicy } from "../../core/approval-policy";

export function policyOf(row: { approval_policy?: string | null }): ApprovalPolicy {
  if (!row.approval_policy) return DEFAULT_APPROVAL_POLICY;
  const stored = JSON.parse(row.approval_policy) as ApprovalPolicy;
  return { approvalsRequired: stored.approvalsRequired, vaultKeys: stored.vaultKeys ?? null };
}

/** What the column holds for `policy`: NULL for the default, so an untouched account reads as one. */
export function policyColumn(policy: ApprovalPolicy): string | null {
  return policy.approvalsRequired <= 1 && policy.vaultKeys === null ? null : JSON.stringify(policy);
}
