/**
 * N-of-M approval (README, "Approval policies (N-of-M)"): an account's policy, which requests it
 * covers, and the approvals a covered request has collected. Pure: the AccountDO evaluates the policy
 * once, at issuance (so a request in flight keeps the rule it was issued under), and
 * core/request-state.ts's `decide` counts the approvals.
 */

/** The most approvals a policy may require, and the most vault-key globs it may list. */
export const MAX_APPROVALS_REQUIRED = 5;
export const MAX_POLICY_GLOBS = 32;
/** A glob is at most a vault key's length (128) plus room for wildcards. */
export const MAX_POLICY_GLOB_LENGTH = 160;
/** What a glob may contain: a vault key's characters and `*`. */
export const POLICY_GLOB_PATTERN = /^[A-Za-z0-9._*-]+$/;

export interface ApprovalPolicy {
  /** 1 (the default: one operator decides) to MAX_APPROVALS_REQUIRED distinct operators. */
  approvalsRequired: number;
  /** The vault keys it covers, as globs (`*` matches a run of characters, or none); null: every request. */
  vaultKeys: string[] | null;
}

export const DEFAULT_APPROVAL_POLICY: ApprovalPolicy = { approvalsRequired: 1, vaultKeys: null };

/**
 * Whether `vaultKey` matches `glob`, where `*` stands for any run of characters (including none) and
 * every other character for itself, case-sensitively (vault keys are case-sensitive). Iterative with
 * backtracking to the last `*`: linear in practice, never exponential, whatever the glob.
 */
export function globMatches(glob: string, vaultKey: string): boolean {
  let g = 0;
  let k = 0;
  let star = -1;
  let resumeAt = 0;
  while (k < vaultKey.length) {
    if (g < glob.length && glob[g] === "*") {
      star = g++;
      resumeAt = k;
    } else if (g < glob.length && glob[g] === vaultKey[k]) {
      g++;
      k++;
    } else if (star >= 0) {
      g = star + 1;
      k = ++resumeAt;
    } else {
      return false;
    }
  }
  while (g < glob.length && glob[g] === "*") g++;
  return g === glob.length;
}

/** How many distinct operators must approve a request for `vaultKey` under `policy`. */
export function approvalsRequiredFor(policy: ApprovalPolicy, vaultKey: string): number {
  if (policy.approvalsRequired <= 1) return 1;
  const covered = policy.vaultKeys === null || policy.vaultKeys.some((glob) => globMatches(glob, vaultKey));
  return covered ? policy.approvalsRequired : 1;
}

/** One operator's approval of a covered request, as the audit and the console show it. */
export interface Approver {
  operatorId: string;
  email: string;
  passkeyId: string;
  /** Unix ms. */
  at: number;
}

/**
 * A covered request's approvals so far (fewer than it needs): the first approver's credential is
 * stored encrypted to the agent, and `payloadSha256` is the digest every later approver's passkey
 * signs (DESIGN.md, v1.2: "later approvals sign its digest").
 */
export interface ApprovalProgress {
  payloadSha256: string;
  approvers: Approver[];
}
