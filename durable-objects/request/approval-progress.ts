/**
 * A request that needs several operators (README, "Approval policies (N-of-M)") in its object: the
 * approvals so far live in its details (`progress`), and the first approver's credential, encrypted
 * to the agent like every approval's, in its `payload`, in one row write; neither is delivered
 * before the count is met (the status stays `pending`). A denial erases both at once; the TTL alarm
 * erases everything anyway.
 */
import type { ApprovalProgress, Approver } from "../../core/approval-policy";
import type { ConsoleApprovals } from "../account/console-approvals";
import type { LiveRecord } from "./request-types";
import { patchRow } from "./request-schema";

/** What core/request-state.ts's `decide` counts against: the count fixed at issuance, and the approvals so far. */
export const approvalsOf = (record: LiveRecord) => ({ required: record.details.approvalsRequired ?? 1, progress: record.details.progress ?? null });

/** What the look-up shows of a request that needs several operators (README, "Approval policies (N-of-M)"); nothing for one approval. */
export function approvalsViewOf(record: LiveRecord): { approvals?: ConsoleApprovals } {
  const { required, progress } = approvalsOf(record);
  if (required <= 1) return {};
  const approvers = (progress?.approvers ?? []).map(({ operatorId, email }) => ({ operatorId, email }));
  return { approvals: { required, payloadSha256: progress?.payloadSha256 ?? null, approvers } };
}

/** One more approval, not yet enough: the progress, and the first approver's payload (later ones send none). */
export function storePartialApproval(kv: SyncKvStorage, record: LiveRecord, progress: ApprovalProgress, payload: string | null): void {
  const details = { ...record.details, progress };
  patchRow(kv, { ...(payload === null ? {} : { payload }), details: JSON.stringify(details) });
  record.details = details;
}

/** A denied (or locked) request's stored credential and approvals go now, not at its expiry. */
export function forgetApprovals(kv: SyncKvStorage, record: LiveRecord): void {
  if (!record.details.progress) return;
  const { progress: _dropped, ...details } = record.details;
  patchRow(kv, { payload: null, details: JSON.stringify(details) });
  record.details = details;
}

/** The approved event's list of every approver, for the audit log and the webhook (`actor` stays the last one). */
export function approversDetail(approvers: Approver[] | undefined): { approvers?: Array<{ operator_id: string; email: string; passkey_id: string; at: string }> } {
  if (!approvers) return {};
  return { approvers: approvers.map((a) => ({ operator_id: a.operatorId, email: a.email, passkey_id: a.passkeyId, at: new Date(a.at).toISOString() })) };
}
