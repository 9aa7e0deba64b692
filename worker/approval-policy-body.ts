/**
 * `approval_policy` on `PATCH /v1/admin/accounts/{id}` (README, "Approval policies (N-of-M)"): checked
 * here, at the trust boundary, into core/approval-policy.ts's shape; and back to the wire.
 */
import { z } from "zod";
import {
  MAX_APPROVALS_REQUIRED,
  MAX_POLICY_GLOBS,
  MAX_POLICY_GLOB_LENGTH,
  POLICY_GLOB_PATTERN,
  type ApprovalPolicy,
} from "../core/approval-policy";
import type { ApprovalPolicyBody } from "../core/wire";

const globSchema = z
  .string({ error: "must be a string" })
  .min(1, "must not be empty")
  .max(MAX_POLICY_GLOB_LENGTH, `must be at most ${MAX_POLICY_GLOB_LENGTH} characters`)
  .regex(POLICY_GLOB_PATTERN, "must be a vault key pattern: letters, digits, '.', '_', '-' and the wildcard '*'");

/** `null` puts the account back to one approval for every request. */
export const approvalPolicySchema = z
  .object(
    {
      approvals_required: z
        .number({ error: `must be an integer from 1 to ${MAX_APPROVALS_REQUIRED}` })
        .int(`must be an integer from 1 to ${MAX_APPROVALS_REQUIRED}`)
        .min(1, `must be an integer from 1 to ${MAX_APPROVALS_REQUIRED}`)
        .max(MAX_APPROVALS_REQUIRED, `must be an integer from 1 to ${MAX_APPROVALS_REQUIRED}`),
      vault_keys: z
        .array(globSchema, { error: "must be a list of vault key patterns" })
        .min(1, "must list at least one pattern; leave it out to cover every request")
        .max(MAX_POLICY_GLOBS, `must list at most ${MAX_POLICY_GLOBS} patterns`)
        .optional(),
    },
    { error: "must be an object with approvals_required (1 to 5) and optional vault_keys" },
  )
  .nullable()
  .transform((body): ApprovalPolicy => (body === null ? { approvalsRequired: 1, vaultKeys: null } : { approvalsRequired: body.approvals_required, vaultKeys: body.vault_keys ?? null }));

export const approvalPolicyJson = (policy: ApprovalPolicy): ApprovalPolicyBody => ({
  approvals_required: policy.approvalsRequired,
  ...(policy.vaultKeys !== null ? { vault_keys: policy.vaultKeys } : {}),
});
