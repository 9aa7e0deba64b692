// URL-mode elicitation (MCP 2025-11-25, client/elicitation): the server asks the client to open a
// URL out of band, with an `elicitationId`, and later sends `notifications/elicitation/complete`.
// Everything about it lives in this one module: the 2026-07-28 revision replaces it with
// `input_required` results and a signed `requestState`, to be added when the SDK supports them.
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { RequestId } from "@modelcontextprotocol/sdk/types.js";

export interface UrlElicitation {
  /** `accept`: the user agreed to open the URL; `decline`/`cancel`: they did not. */
  action: "accept" | "decline" | "cancel";
  /** Sends `notifications/elicitation/complete` for this elicitation (errors are swallowed). */
  complete(): Promise<void>;
}

/** Whether the client declared `capabilities.elicitation.url` in `initialize`. */
export function supportsUrlElicitation(server: Server): boolean {
  const elicitation = server.getClientCapabilities()?.elicitation;
  return typeof elicitation === "object" && elicitation !== null && "url" in elicitation && elicitation.url !== undefined;
}

/** `elicitation/create` with `mode: "url"`, tied to the tool call `relatedRequestId`. */
export async function elicitUrl(
  server: Server,
  options: { url: string; message: string; relatedRequestId: RequestId; signal: AbortSignal; timeoutMs: number },
): Promise<UrlElicitation> {
  const elicitationId = crypto.randomUUID();
  const result = await server.elicitInput(
    { mode: "url", message: options.message, url: options.url, elicitationId },
    { signal: options.signal, timeout: options.timeoutMs, relatedRequestId: options.relatedRequestId },
  );
  const notify = server.createElicitationCompletionNotifier(elicitationId, { relatedRequestId: options.relatedRequestId });
  return {
    action: result.action,
    complete: () => notify().catch(() => undefined),
  };
}
