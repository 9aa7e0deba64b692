// How request_credential shows the approval URL to the user, by protocol era:
// - MCP 2026-07-28 (no initialize; every request carries a `_meta` envelope): the tool answers with an
//   `input_required` result embedding a URL-mode elicitation and a requestState (./approval-state.ts);
//   the client shows the URL and retries the call. Embedding is allowed only for what the client
//   declared on that request (the SDK answers -32021 otherwise), so `--elicitation url` cannot force it.
// - MCP 2025-11-25 (initialize): `elicitation/create` with `mode: "url"` and an elicitationId, then
//   `notifications/elicitation/complete` once the credential is stored. `--elicitation url` sends it
//   even to a client that did not declare `elicitation.url` (the request is not gated by default).
// - Otherwise, or with `--elicitation none`: the URL, code and fingerprint in the result, then
//   wait_for_credential.
import { CLIENT_CAPABILITIES_META_KEY, PROTOCOL_VERSION_META_KEY, type ClientCapabilities, type ServerContext } from "@modelcontextprotocol/server";

export type ElicitationMode = "auto" | "url" | "none";
export const ELICITATION_MODES: readonly ElicitationMode[] = ["auto", "url", "none"];

export type ApprovalChannel = "input-required" | "elicitation-create" | "text";

export function approvalChannel(mode: ElicitationMode, context: ServerContext, legacyCapabilities: ClientCapabilities | undefined): ApprovalChannel {
  if (mode === "none") return "text";
  const envelope = context.mcpReq.envelope as Record<string, unknown> | undefined;
  if (envelope?.[PROTOCOL_VERSION_META_KEY] !== undefined) {
    return declaresUrl(envelope[CLIENT_CAPABILITIES_META_KEY] as ClientCapabilities | undefined) ? "input-required" : "text";
  }
  return mode === "url" || declaresUrl(legacyCapabilities) ? "elicitation-create" : "text";
}

function declaresUrl(capabilities: ClientCapabilities | undefined): boolean {
  const elicitation = capabilities?.elicitation;
  return typeof elicitation === "object" && elicitation !== null && "url" in elicitation && elicitation.url !== undefined;
}

export interface UrlElicitation {
  /** `accept`: the user agreed to open the URL; `decline`/`cancel`: they did not. */
  action: "accept" | "decline" | "cancel";
  /** Sends `notifications/elicitation/complete` for this elicitation (errors are swallowed). */
  complete(): Promise<void>;
}

/** 2025-11-25: `elicitation/create` with `mode: "url"`, sent in relation to the tool call being served. */
export async function elicitUrl(context: ServerContext, options: { url: string; message: string; timeoutMs: number }): Promise<UrlElicitation> {
  const elicitationId = crypto.randomUUID();
  const result = await context.mcpReq.send(
    { method: "elicitation/create", params: { mode: "url", message: options.message, url: options.url, elicitationId } },
    { signal: context.mcpReq.signal, timeout: options.timeoutMs },
  );
  return {
    action: result.action,
    complete: () => context.mcpReq.notify({ method: "notifications/elicitation/complete", params: { elicitationId } }).catch(() => undefined),
  };
}
