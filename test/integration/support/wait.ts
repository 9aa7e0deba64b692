import { exports } from "cloudflare:workers";
import type { Answer } from "./api";
import { RETURN_CHANNEL_PROTOCOL, WAIT_AUTH_REQ_ID_PREFIX, WAIT_DEVICE_CODE_PREFIX, WAIT_DPOP_PREFIX } from "../../../core/wire";

/** A return-channel client inside workerd: what the socket said, and how it closed. */
export interface Waiter {
  status: number;
  protocol: string | null;
  /** The refusal body when the upgrade was refused. */
  body: Answer | null;
  retryAfter: string | null;
  messages: string[];
  closed: Promise<{ code: number }>;
  /** Resolves with the first message, parsed (the test checks its shape). */
  message: Promise<unknown>;
  /** Sends on the socket (nothing where the upgrade was refused). */
  send(data: string): void;
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
    return { status: response.status, protocol: null, body: text ? JSON.parse(text) : null, retryAfter: response.headers.get("Retry-After"), messages: [], closed: empty, message: new Promise(() => {}), send: () => {} };
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
  const send = (data: string) => ws.send(data);
  return { status: response.status, protocol: response.headers.get("Sec-WebSocket-Protocol"), body: null, retryAfter: null, messages, closed, message, send };
}

export const deviceCodeProtocols = (deviceCode: string, dpopProof?: string) => [
  RETURN_CHANNEL_PROTOCOL,
  `${WAIT_DEVICE_CODE_PREFIX}${deviceCode}`,
  ...(dpopProof ? [`${WAIT_DPOP_PREFIX}${dpopProof}`] : []),
];
export const authReqIdProtocols = (authReqId: string) => [RETURN_CHANNEL_PROTOCOL, `${WAIT_AUTH_REQ_ID_PREFIX}${authReqId}`];
