// The return channel's client end for end-to-end tests (README, "Contract notes": return channel): a socket on
// `/v1/credentials/wait` with the runtime's own WebSocket (Node 22), and an upgrade attempt over
// node:http that shows the status and body of a refusal (a WebSocket client only sees "error").
import { request as httpRequest } from "node:http";
import { randomBytes } from "node:crypto";

export interface WaitSocket {
  ws: WebSocket;
  /** Resolves when the upgrade succeeded; rejects when it was refused. */
  opened: Promise<void>;
  /** The first text message, parsed. */
  message: Promise<unknown>;
  /** The close code. */
  closed: Promise<number>;
}

export const waitUrl = (server: { url: string }) => `${server.url.replace(/^http/, "ws")}/v1/credentials/wait`;

/**
 * Opens `GET /v1/credentials/wait` offering `protocols`; `headers` (e.g. the agent's Authorization for
 * an auth_req_id) use Node's WebSocket extension `{ protocols, headers }`, which browsers do not have.
 */
export function openWaitSocket(server: { url: string }, protocols: string[], headers?: Record<string, string>): WaitSocket {
  const init = headers ? ({ protocols, headers } as unknown as string[]) : protocols;
  const ws = new WebSocket(waitUrl(server), init);
  const opened = new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve());
    ws.addEventListener("error", () => reject(new Error("the socket was refused")));
  });
  opened.catch(() => undefined);
  const message = new Promise<unknown>((resolve) => ws.addEventListener("message", (event) => resolve(JSON.parse(String(event.data)))));
  const closed = new Promise<number>((resolve) => ws.addEventListener("close", (event) => resolve(event.code)));
  return { ws, opened, message, closed };
}

export interface UpgradeAnswer {
  status: number;
  /** The parsed JSON body of a refusal; `{}` for a 101 or a body that is not JSON. */
  json: Record<string, unknown>;
  /** The selected subprotocol of a 101. */
  protocol: string | undefined;
}

/** One WebSocket upgrade request by hand: the server's answer before (or instead of) the upgrade. */
export function tryUpgrade(server: { url: string }, protocols: string[], headers: Record<string, string> = {}): Promise<UpgradeAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${server.url}/v1/credentials/wait`, {
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
        "Sec-WebSocket-Protocol": protocols.join(", "),
        ...headers,
      },
      timeout: 30_000,
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, json: {}, protocol: res.headers["sec-websocket-protocol"] });
    });
    req.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => {
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          // Not JSON: the caller asserts on the status.
        }
        resolve({ status: res.statusCode ?? 0, json, protocol: undefined });
      });
    });
    req.on("timeout", () => req.destroy(new Error("upgrade attempt timed out")));
    req.on("error", reject);
    req.end();
  });
}
