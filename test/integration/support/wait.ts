import { exports } from "cloudflare:workers";
import type { Answer } from "./api";

/** A return-channel client inside workerd: what the socket said, and how it closed. */
export interface Waiter {
  status: number;
  protocol: string | null;
  /** The refusal body when the upgrade was refused. */
  body: Answer | null;
  messages: string[];
  closed: Promise<{ code: number }>;
  /** Resolves with the first message, parsed (the test checks its shape). */
  message: Promise<unknown>;
}

export async function openWait(protocols: string[], headers: Record<string, string> = {}): Promise<Waiter> {
  const response = await exports.default.fetch(
    new Request("https://keyferry.test/v1/credentials/wait", {
      headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": protocols.join(", "), "CF-Connecting-IP": "10.9.9.9", ...headers },
    }),
  );
  const ws = response.webSocket;
  if (!ws) {
    const text = await response.text();
    const empty = Promise.resolve({ code: 0 });
    return { status: response.status, protocol: null, body: text ? JSON.parse(text) : null, messages: [], closed: empty, message: new Promise(() => {}) };
  }
  ws.accept();
  const messages: string[] = [];
  let first: (value: unknown) => void;
  const message = new Promise<unknown>((resolve) => (first = resolve));
  ws.addEventListener("message", (event) => {
    messages.push(String(event.data));
    if (messages.length === 1) first(JSON.parse(String(event.data)));
  });
  const closed = new Promise<{ code: number }>((resolve) => ws.addEventListener("close", (event) => resolve({ code: event.code })));
  return { status: response.status, protocol: response.headers.get("Sec-WebSocket-Protocol"), body: null, messages, closed, message };
}

export const deviceCodeProtocols = (deviceCode: string) => ["keyferry.v1", `keyferry.device-code.${deviceCode}`];
export const authReqIdProtocols = (authReqId: string) => ["keyferry.v1", `keyferry.auth-req-id.${authReqId}`];
