/**
 * The agent's side of the return channel (README, "Contract notes": return channel), as a benchmark client
 * opens it: Node 22's global WebSocket on `GET /v1/credentials/wait`, offering `keyferry.v1` and
 * `keyferry.device-code.<device_code>` (as sdk/src/return-channel.ts and
 * test/e2e/return-channel.test.ts do). No reconnect: a drop is counted, not retried.
 */
import { RETURN_CHANNEL_PROTOCOL, WAIT_DEVICE_CODE_PREFIX } from "../core/wire.ts";

export interface WaitSocket {
  /** Resolves when the server selected `keyferry.v1`; rejects on refusal or another protocol. */
  opened: Promise<void>;
  /** The first message, parsed (`{type: "decided", status}` or `{type: "expired"}`), and when it arrived. */
  message: Promise<{ type?: string; status?: string; at: number }>;
  close(): void;
}

export function openWaitSocket(base: string, deviceCode: string): WaitSocket {
  const ws = new WebSocket(`${base.replace(/^http/, "ws")}/v1/credentials/wait`, [RETURN_CHANNEL_PROTOCOL, `${WAIT_DEVICE_CODE_PREFIX}${deviceCode}`]);
  const opened = new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => (ws.protocol === RETURN_CHANNEL_PROTOCOL ? resolve() : reject(new Error(`protocol ${ws.protocol || "none"}`))));
    ws.addEventListener("error", () => reject(new Error("refused")));
    ws.addEventListener("close", (event) => reject(new Error(`closed ${event.code} before open`)));
  });
  const message = new Promise<{ type?: string; status?: string; at: number }>((resolve, reject) => {
    ws.addEventListener("message", (event) => {
      const at = performance.now();
      try {
        resolve({ ...(JSON.parse(String(event.data)) as { type?: string; status?: string }), at });
      } catch {
        reject(new Error("unparsable message"));
      }
    });
    ws.addEventListener("close", (event) => reject(new Error(`closed ${event.code} without a message`)));
    ws.addEventListener("error", () => reject(new Error("socket error")));
  });
  opened.catch(() => undefined);
  message.catch(() => undefined);
  return {
    opened,
    message,
    close: () => {
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
    },
  };
}

/** Rejects after `ms` with `label`, so a lost message ends its handoff instead of the bench. */
export function within<T>(promise: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(label)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
