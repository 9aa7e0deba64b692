/**
 * What the operator console reads from the account (README, "Console"): the summary of each pending
 * request, kept on its `requested` audit row, which is also its slot (./live-slots.ts), and the
 * console's live sockets.
 *
 * The summary is written once, in the `requested` row `issue` writes (no row of its own: a console
 * may list the request a moment before its object exists, and a look-up in that moment finds
 * nothing); nothing is written when the request is decided. A listing is one read of the log's
 * recent events in one call, instead of a call to each request's object per listing, which every
 * open console repeats after every change.
 *
 * The sockets use the Hibernation API (as the return channel does, durable-objects/request/
 * wait-channel.ts): an open console costs no object in memory. They only ever carry
 * `{"type": "requests_changed"}`; the page then refetches the list with its cookie, so a socket
 * never carries a request's content and a session ended since cannot read through it.
 */
import type { JWK } from "jose";
import type { ApprovalProgress } from "../../core/approval-policy";
import type { AuditEventType, RequestSummary } from "./account-types";
import { recordConsoleApproval, type ConsoleApprovals } from "./console-approvals";
import { liveSlots, requestedRowOf } from "./live-slots";

/** The tag of every console socket; each also carries `op:<operator id>`. */
const CONSOLE_TAG = "console";
/** The header by which the worker says which operator's session it checked. */
export const CONSOLE_OPERATOR = "Keyferry-Operator";

/** A pending request as the console shows it; both keys are public keys. */
export type ConsoleRequest = Omit<RequestSummary, "accountId"> & RequestKeys & { approvals?: ConsoleApprovals };

/** The keys a new request's console summary needs besides its notice's summary. */
export interface RequestKeys {
  /** End-to-end mode: the agent's own key, which the browser encrypts to. */
  publicKey: JWK | null;
  /** The key the credential is encrypted to (`publicKey`, or the request's own). */
  encryptionKey: JWK;
}

/** The summary stored on the request's slot, in its `requested` row (./active-slots.ts); `approvalsRequired` above 1: the request needs that many operators (./console-approvals.ts). */
export function consoleViewOf(summary: RequestSummary, keys: RequestKeys, approvalsRequired = 1): string {
  const { accountId: _account, ...shown } = summary;
  const approvals = approvalsRequired > 1 ? { approvals: { required: approvalsRequired, payloadSha256: null, approvers: [] } } : {};
  const view: ConsoleRequest = { ...shown, publicKey: keys.publicKey, encryptionKey: keys.encryptionKey, ...approvals };
  return JSON.stringify(view);
}

/** Events after which a request is no longer waiting for an operator. */
const ENDS_WAITING: ReadonlySet<AuditEventType> = new Set(["approved", "denied", "locked", "expired", "delivered"]);

/**
 * Whether the event changes the console's list (the consoles are told). Nothing is written for an
 * ending event: the listing leaves out a request decided since its `requested` event (./live-slots.ts).
 */
export function settleConsoleView(sql: SqlStorage, event: { type: AuditEventType; requestId?: string | undefined; progress?: ApprovalProgress | undefined }, now: number): boolean {
  // A partial approval (README, "Approval policies (N-of-M)") keeps the request listed, with who approved.
  if (event.type === "partially_approved" && event.requestId && event.progress) return recordConsoleApproval(sql, event.requestId, event.progress, now);
  return event.requestId !== undefined && ENDS_WAITING.has(event.type);
}

/** The requests holding a slot that no operator has approved yet, soonest to expire first; `horizonMs`: ./live-slots.ts. */
export function pendingConsoleRequests(sql: SqlStorage, now: number, horizonMs: number): ConsoleRequest[] {
  return liveSlots(sql, now, horizonMs)
    .filter((row) => !row.approved && row.consoleView !== null)
    .map((row) => JSON.parse(row.consoleView!) as ConsoleRequest);
}

/** One pending request of this account, with the user code that addresses its object. */
export function pendingConsoleRequest(sql: SqlStorage, requestId: string, now: number, horizonMs: number): { view: ConsoleRequest; userCode: string } | null {
  const row = requestedRowOf(sql, requestId, now, horizonMs);
  if (!row?.held || row.approved || row.consoleView === null || row.userCode === null) return null;
  return { view: JSON.parse(row.consoleView) as ConsoleRequest, userCode: row.userCode };
}

/** Accepts a console's upgrade (the worker checked its session) through the Hibernation API. */
export function acceptConsoleSocket(ctx: DurableObjectState, request: Request): Response {
  const operatorId = request.headers.get(CONSOLE_OPERATOR);
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket" || !operatorId) return new Response(null, { status: 400 });
  const [clientEnd, serverEnd] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  ctx.acceptWebSocket(serverEnd, [CONSOLE_TAG, `op:${operatorId}`]);
  return new Response(null, { status: 101, webSocket: clientEnd });
}

export function announceRequestsChanged(ctx: DurableObjectState): void {
  for (const ws of ctx.getWebSockets(CONSOLE_TAG)) {
    try {
      ws.send(JSON.stringify({ type: "requests_changed" }));
    } catch {
      // The console left: it refetches when it reconnects.
    }
  }
}

/** A removed operator's consoles are closed at once (their next refetch would be refused anyway). */
export function closeOperatorSockets(ctx: DurableObjectState, operatorId: string): void {
  for (const ws of ctx.getWebSockets(`op:${operatorId}`)) {
    try {
      ws.close(1008, "operator removed");
    } catch {
      // already closed
    }
  }
}
