/**
 * The return channel's wire (README, "Return channel"), as the RequestDO speaks it: the headers the
 * worker forwards an upgrade with, the refusal before the upgrade, the announcement.
 */
import { MAX_WAITS_PER_REQUEST } from "../../core/limits";
import { RETURN_CHANNEL_PROTOCOL } from "../../core/wire";
import type { Actor, PollProof, WaitMessage } from "./request-types";

/** Headers by which the worker tells the object, on a return-channel upgrade, what it checked. */
export const WAIT_HANDLE_TAG = "Keyferry-Handle-Tag";
/** `<agent id> <key hash>`: an auth_req_id's waiter that sent its API key. */
export const WAIT_CLIENT = "Keyferry-Client";
/** `<jkt> <until> <jti hash>`: a checked DPoP proof (worker/dpop-header.ts), all three header-safe. */
export const WAIT_PROOF = "Keyferry-Dpop-Proof";
/** `<ip> <user agent>`: who asked, for the replay alarm's audit event. */
export const WAIT_ACTOR = "Keyferry-Actor";
/** On a refused upgrade: the poll's reason (or too_many_requests), which the worker renders. */
export const WAIT_REFUSAL = "Keyferry-Refusal";

export type WaitRefusal = "invalid_grant" | "invalid_client" | "invalid_dpop_proof" | "expired_token" | "access_denied" | "too_many_requests";

/**
 * Accepts the agent's socket through the Hibernation API, tagged with the handle's tag, unless the
 * request holds MAX_WAITS_PER_REQUEST already: counted in memory, with no await between the count
 * and the accept (no row per socket, no race); an approved request is announced at once.
 */
export function acceptWait(ctx: DurableObjectState, handleTag: string, approved: boolean): Response {
  if (ctx.getWebSockets(handleTag).length >= MAX_WAITS_PER_REQUEST) return refusal("too_many_requests");
  const [clientEnd, serverEnd] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  ctx.acceptWebSocket(serverEnd, [handleTag]);
  if (approved) announceOn(serverEnd, { type: "decided", status: "approved" });
  return new Response(null, { status: 101, webSocket: clientEnd, headers: { "Sec-WebSocket-Protocol": RETURN_CHANNEL_PROTOCOL } });
}

export function closeQuietly(ws: WebSocket, code: number, reason?: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // already closed
  }
}

export function announceOn(ws: WebSocket, message: WaitMessage): void {
  try {
    ws.send(JSON.stringify(message));
    ws.close(1000, message.type);
  } catch {
    // The agent left already: its next poll learns the same.
  }
}

/** Announces on every socket waiting with the handle's tag (after the transaction that decided it). */
export function announce(ctx: DurableObjectState, handleTag: string, message: WaitMessage): void {
  for (const ws of ctx.getWebSockets(handleTag)) announceOn(ws, message);
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

export function waitHeaders(headers: Headers, input: { tag: string; client: { agentId: string; keyHash: string } | null; proof: PollProof | null; actor: Actor }): void {
  for (const name of [WAIT_HANDLE_TAG, WAIT_CLIENT, WAIT_PROOF, WAIT_ACTOR]) headers.delete(name);
  headers.set(WAIT_HANDLE_TAG, input.tag);
  if (input.client) headers.set(WAIT_CLIENT, `${input.client.agentId} ${input.client.keyHash}`);
  if (input.proof) headers.set(WAIT_PROOF, `${input.proof.jkt} ${input.proof.until} ${input.proof.jti}`);
  headers.set(WAIT_ACTOR, `${input.actor.ip} ${input.actor.userAgent}`);
}

/** What `waitHeaders` wrote, read back by the object. */
export function waitInput(headers: Headers): {
  tag: string | null;
  client: { agentId: string; keyHash: string } | null;
  proof: PollProof | null;
  actor: Actor | null;
} {
  const [agentId, keyHash] = (headers.get(WAIT_CLIENT) ?? "").split(" ");
  const [jkt, until, jti] = (headers.get(WAIT_PROOF) ?? "").split(" ");
  const actor = headers.get(WAIT_ACTOR);
  const space = actor?.indexOf(" ") ?? -1;
  return {
    tag: headers.get(WAIT_HANDLE_TAG),
    client: agentId && keyHash ? { agentId, keyHash } : null,
    proof: jkt && until && jti ? { jkt, jti, until: Number(until) } : null,
    actor: actor && space > 0 ? { ip: actor.slice(0, space), userAgent: actor.slice(space + 1) } : null,
  };
}
