/**
 * A request that needs several operators (README, "Approval policies (N-of-M)"), in its console item:
 * "k of n approvals", who has approved, and what this operator may do. The first approver types the
 * credential as for any request; once someone has, the others approve with no credential field (their
 * passkey signs the stored credential's digest, `payload_sha256`), and one who approved is told so.
 * Operator emails come from the server but are set as text, as everything else here.
 */
import { approvalsLines, SIGNS_STORED } from "../approvals-text";
import { setText } from "../dom";
import type { ConsoleRequestBody } from "./api";

/** How this operator approves the request now. */
export type ApprovalMode = { kind: "credential" } | { kind: "sign_stored"; payloadSha256: string } | { kind: "approved_by_me" };

export function approvalModeOf(request: ConsoleRequestBody, me: string): ApprovalMode {
  if (request.approvals_required === undefined || request.payload_sha256 === undefined) return { kind: "credential" };
  if ((request.approvals ?? []).some((approval) => approval.operator_id === me)) return { kind: "approved_by_me" };
  return { kind: "sign_stored", payloadSha256: request.payload_sha256 };
}

/** Shows (or updates) the item's approvals and hides what this operator no longer needs; returns the mode. */
export function showApprovals(item: HTMLElement, request: ConsoleRequestBody, me: string): ApprovalMode {
  const mode = approvalModeOf(request, me);
  const lines = approvalsLines(request);
  if (!lines) return mode;
  const box = item.querySelector<HTMLElement>(".request-approvals") ?? addBox(item);
  setText(box.querySelector<HTMLElement>(".request-approvals-count")!, lines.count);
  setText(box.querySelector<HTMLElement>(".request-approvers")!, lines.approvers);
  setText(
    box.querySelector<HTMLElement>(".request-approvals-mine")!,
    mode.kind === "approved_by_me" ? "You approved this request. It waits for another operator; you can still deny it." : mode.kind === "sign_stored" ? SIGNS_STORED : "",
  );
  item.querySelector<HTMLElement>(".request-credential")!.closest<HTMLElement>(".field")!.hidden = mode.kind !== "credential";
  item.querySelector<HTMLButtonElement>(".request-approve")!.hidden = mode.kind === "approved_by_me";
  // A saved credential is a first approver's: once one is stored, the others sign it instead.
  const saved = item.querySelector<HTMLButtonElement>(".request-approve-saved");
  if (saved && mode.kind !== "credential") saved.hidden = true;
  return mode;
}

function addBox(item: HTMLElement): HTMLElement {
  const box = document.createElement("div");
  box.className = "request-approvals notice notice-info";
  for (const part of ["request-approvals-count", "request-approvers", "request-approvals-mine"]) {
    const line = document.createElement("p");
    line.className = part;
    box.append(line);
  }
  box.querySelector(".request-approvals-count")!.classList.add("e2e-title");
  item.querySelector(".request-form")!.before(box);
  return box;
}
