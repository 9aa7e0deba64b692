import type { CallToolResult, InputRequiredResult } from "@modelcontextprotocol/server";
import { KeyferryError } from "../errors";

/** A successful tool result: text for the model, the same facts as structured content. */
export function toolResult(text: string, structured: Record<string, unknown>): CallToolResult {
  return { content: [{ type: "text", text }], structuredContent: structured };
}

/** A tool error (`isError: true`): the model sees it, the server keeps running. */
export function toolError(text: string, structured?: Record<string, unknown>): CallToolResult {
  return { content: [{ type: "text", text }], isError: true, ...(structured ? { structuredContent: structured } : {}) };
}

/**
 * One line for any failure. `KeyferryError` messages never carry a secret (sdk/src/errors.ts); any
 * other error is a bug here, so only its kind is named, never its message or stack.
 */
export function describeError(error: unknown): string {
  if (error instanceof KeyferryError) return `${error.message} (${error.code})`;
  return `internal error in keyferry mcp (${error instanceof Error ? error.name : typeof error})`;
}

/** Runs a tool body; whatever it throws becomes a tool error rather than a JSON-RPC error or a crash. */
export async function guarded<T extends CallToolResult | InputRequiredResult>(body: () => Promise<T>): Promise<T | CallToolResult> {
  try {
    return await body();
  } catch (error) {
    return toolError(describeError(error));
  }
}
