/**
 * The return channel's wire (README, "Contract notes": return channel), as the RequestDO speaks it: the
 * headers the worker forwards an upgrade with, the refusal before the upgrade, the announcement.
 */
import type { WaitMessage } from "./request-types";

/** Headers by which the worker tells the object, on a return-channel upgrade, what it checked. */
export const WAIT_HANDLE_TAG = "Keyferry-Handle-Tag";
export const WAIT_CLIENT = "Keyferry-Client";
/** On a refused upgrade: the poll's reason, which the worker renders as the poll would. */
export const WAIT_REFUSAL = "Keyferry-Refusal";

export type WaitRefusal = "invalid_grant" | "invalid_client" | "expired_token" | "access_denied";

export function announceOn(ws: WebSocket, message: WaitMessage): void {
  try {
    ws.send(JSON.stringify(message));
    ws.close(1000, message.type);
  } catch {
    // The agent left already: its next poll learns the same.
  }
}

/** Answers a peer's close frame with its code (1005 and 1006 may not be sent: 1000 instead). */
export function answerClose(ws: WebSocket, code: number): void {
  try {
    ws.close(code === 1005 || code === 1006 ? 1000 : code);
  } catch {
    // already closed
  }
}

export function refusal(reason: WaitRefusal): Response {
  return new Response(null, { status: 400, headers: { [WAIT_REFUSAL]: reason } });
}

export function parseClient(header: string | null): { agentId: string; keyHash: string } | null {
  if (!header) return null;
  const [agentId, keyHash] = header.split(" ");
  return agentId && keyHash ? { agentId, keyHash } : null;
}
