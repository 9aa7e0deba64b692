// A `fetch` and a `webSocket` factory for the agent SDK that record, in order, every poll and
// everything on every return-channel socket, so a test can tell a credential that came over the
// channel from one that polling happened to collect.
import type { FetchLike, WebSocketFactory } from "../../../sdk/src/index";

export type TraceStep =
  | { kind: "open"; socket: number; protocol: string }
  | { kind: "message"; socket: number; data: unknown }
  | { kind: "error"; socket: number }
  | { kind: "close"; socket: number }
  | { kind: "poll"; socketOpen: boolean; dpop: boolean }
  | { kind: "answer"; status: number; error?: string };

export interface SdkTrace {
  steps: TraceStep[];
  /** Every socket the SDK asked for: where, and the subprotocols it offered. */
  sockets: { url: string; protocols: string[] }[];
  /** Resolves when the socket with this index (0 = the first) has opened. */
  opened(socket: number): Promise<void>;
  /** Resolves when the SDK has lost the socket with this index (error or close). */
  lost(socket: number): Promise<void>;
  webSocket: WebSocketFactory;
  fetch: FetchLike;
}

export function traceSdk(): SdkTrace {
  const steps: TraceStep[] = [];
  const sockets: SdkTrace["sockets"] = [];
  let openSockets = 0;
  const openedAt = new Map<number, () => void>();
  const lostAt = new Map<number, () => void>();
  const openPromises = new Map<number, Promise<void>>();
  const lostPromises = new Map<number, Promise<void>>();
  const once = (promises: Map<number, Promise<void>>, resolvers: Map<number, () => void>, socket: number) => {
    if (!promises.has(socket)) promises.set(socket, new Promise<void>((resolve) => resolvers.set(socket, resolve)));
    return promises.get(socket)!;
  };

  const webSocket: WebSocketFactory = (url, protocols) => {
    const socket = sockets.length;
    sockets.push({ url, protocols: [...protocols] });
    once(openPromises, openedAt, socket);
    once(lostPromises, lostAt, socket);
    const ws = new WebSocket(url, protocols);
    let isOpen = false;
    // Registered before the SDK's own listeners, so each step is recorded before the SDK acts on it.
    ws.addEventListener("open", () => {
      isOpen = true;
      openSockets += 1;
      steps.push({ kind: "open", socket, protocol: ws.protocol });
      openedAt.get(socket)!();
    });
    ws.addEventListener("message", (event) => steps.push({ kind: "message", socket, data: JSON.parse(String(event.data)) }));
    const lost = (kind: "error" | "close") => () => {
      if (isOpen) openSockets -= 1;
      isOpen = false;
      steps.push({ kind, socket });
      lostAt.get(socket)!();
    };
    ws.addEventListener("error", lost("error"));
    ws.addEventListener("close", lost("close"));
    return ws;
  };

  const fetch: FetchLike = async (input, init) => {
    const isPoll = new URL(input).pathname === "/v1/credentials/poll";
    if (isPoll) steps.push({ kind: "poll", socketOpen: openSockets > 0, dpop: new Headers(init.headers).has("dpop") });
    let response: Response;
    try {
      response = await globalThis.fetch(input, init);
    } catch (error) {
      if (isPoll) steps.push({ kind: "answer", status: 0, error: "network" });
      throw error;
    }
    if (isPoll) {
      const error = response.status === 200 ? undefined : ((await response.clone().json()) as { error?: string }).error;
      steps.push({ kind: "answer", status: response.status, ...(error ? { error } : {}) });
    }
    return response;
  };

  return {
    steps,
    sockets,
    opened: (socket) => once(openPromises, openedAt, socket),
    lost: (socket) => once(lostPromises, lostAt, socket),
    webSocket,
    fetch,
  };
}
