/**
 * What the operator console reads from the account (README, "Console"): the summary of each pending
 * request, kept on its `active_requests` row, and the console's live sockets.
 *
 * The summary is written once, with the slot `issue` takes (one row write for both: a console may
 * list the request a moment before its object exists, and a look-up in that moment finds nothing),
 * and cleared by the request's decision; a listing is then one
 * read of at most 5 rows in one call, instead of a call to each request's object per listing, which
 * every open console repeats after every change.
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
import { hasEnded } from "./active-slots";

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

/** The column's migration for an account made before it (`ALTER TABLE` has no `IF NOT EXISTS`). */
export function addConsoleColumn(sql: SqlStorage): void {
  const has = sql.exec("SELECT 1 FROM pragma_table_info('active_requests') WHERE name = 'console_view'").toArray().length > 0;
  if (!has) sql.exec("ALTER TABLE active_requests ADD COLUMN console_view TEXT");
}

/** The summary stored on the request's slot, in the slot's own row write (./active-slots.ts); `approvalsRequired` above 1: the request needs that many operators (./console-approvals.ts). */
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
 * ending event: the listing leaves out a request decided since its `requested` event (./active-slots.ts).
 */
export function settleConsoleView(sql: SqlStorage, event: { type: AuditEventType; requestId?: string | undefined; progress?: ApprovalProgress | undefined }): boolean {
  // A partial approval (README, "Approval policies (N-of-M)") keeps the request listed, with who approved.
  if (event.type === "partially_approved" && event.requestId && event.progress) return recordConsoleApproval(sql, event.requestId, event.progress);
  return event.requestId !== undefined && ENDS_WAITING.has(event.type);
}

export function pendingConsoleRequests(sql: SqlStorage, now: number): ConsoleRequest[] {
  return sql
    .exec<{ console_view: string }>(`SELECT console_view FROM active_requests WHERE console_view IS NOT NULL AND expires_at > ? AND NOT ${hasEnded("console")} ORDER BY expires_at`, now)
    .toArray()
    .map((row) => JSON.parse(row.console_view) as ConsoleRequest);
}

/** One pending request of this account, with the user code that addresses its object. */
export function pendingConsoleRequest(sql: SqlStorage, requestId: string, now: number): { view: ConsoleRequest; userCode: string } | null {
  const row = sql
    .exec<{ console_view: string; user_code: string }>(
      `SELECT console_view, user_code FROM active_requests WHERE request_id = ? AND console_view IS NOT NULL AND expires_at > ? AND NOT ${hasEnded("console")}`,
      requestId,
      now,
    )
    .toArray()[0];
  return row ? { view: JSON.parse(row.console_view) as ConsoleRequest, userCode: row.user_code } : null;
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
