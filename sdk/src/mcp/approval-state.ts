// The `requestState` of a 2026-07-28 `input_required` answer to request_credential. It travels
// through the client and comes back as attacker-controlled input (MCP 2026-07-28, basic/patterns/
// mrtr, server requirements 4-5: integrity-protect it, reject what fails verification), so it is:
// - HMAC-SHA-256 under a key made for this process (the SDK's createRequestStateCodec), so it cannot
//   be forged or edited, and dies with the process, as the pending requests it points to do;
// - expiring (the codec's `exp`, at most the device request's own life);
// - bound to the tool call: a digest of the tool name and its arguments, checked on the retry;
// - single use: its nonce is the one the pending request expects, and is forgotten on first use, so a
//   replayed state is refused.
// It carries no secret (the codec signs, it does not encrypt): the device code stays in memory.
import { createHash, randomBytes } from "node:crypto";
import { createRequestStateCodec, type ServerContext } from "@modelcontextprotocol/server";

interface ApprovalPayload {
  /** The vault key of the pending request. */
  v: string;
  /** Single-use nonce, also held by the pending request. */
  n: string;
  /** sha256(JSON [tool name, arguments]), base64url. */
  c: string;
}

export type StateCheck = { ok: true; vaultKey: string; nonce: string } | { ok: false; reason: "invalid" | "other-call" };

/** At most this long, whatever the request's own life: a client retries at once after the user answers. */
const STATE_TTL_SECONDS = 15 * 60;

export class ApprovalStates {
  readonly #codec = createRequestStateCodec<ApprovalPayload>({ key: randomBytes(32), ttlSeconds: STATE_TTL_SECONDS });

  /** A fresh state for `call`, and the nonce the pending request must hold until the retry. */
  async mint(call: ToolCall): Promise<{ state: string; nonce: string }> {
    const nonce = randomBytes(16).toString("base64url");
    const state = await this.#codec.mint({ v: call.arguments.vault_key, n: nonce, c: digest(call) });
    return { state, nonce };
  }

  /** Checks MAC, expiry and the binding to `call`; the caller then checks and spends the nonce. */
  async check(state: string, call: ToolCall, context: ServerContext): Promise<StateCheck> {
    let payload: ApprovalPayload;
    try {
      payload = await this.#codec.verify(state, context);
    } catch {
      return { ok: false, reason: "invalid" };
    }
    if (payload.c !== digest(call) || payload.v !== call.arguments.vault_key) return { ok: false, reason: "other-call" };
    return { ok: true, vaultKey: payload.v, nonce: payload.n };
  }
}

export interface ToolCall {
  name: string;
  arguments: { vault_key: string } & Record<string, string>;
}

function digest(call: ToolCall): string {
  const args = Object.keys(call.arguments)
    .sort()
    .map((name) => [name, call.arguments[name]]);
  return createHash("sha256").update(JSON.stringify([call.name, args])).digest("base64url");
}
