/**
 * A child process of the 10,000-socket run (bench/return-channel-10k.ts): holds its share of the
 * agents' return-channel sockets, so no process nears the 20,000 file descriptors allowed here.
 * The parent sends batches of device codes to open (`open`), asks for counts (`status`) and ends
 * it (`finish`); the child exits by itself when the parent goes away.
 */
import { mapLimit } from "./client.ts";
import { openWaitSocket, within, type WaitSocket } from "./wait-socket.ts";

export type ToClient = { type: "open"; batch: number; base: string; codes: string[] } | { type: "status" } | { type: "finish" };
export type FromClient =
  | { type: "opened"; batch: number; opened: number; failed: Record<string, number> }
  | { type: "status"; open: number; told: number }
  | { type: "final"; opened: number; told: Record<string, number>; lost: Record<string, number>; received: Array<[string, number]> };

const OPEN_IN_FLIGHT = 50;
const OPEN_TIMEOUT_MS = 30_000;
const sockets = new Map<string, WaitSocket>();
/** Messages by `type/status`, and sockets that ended without one (by reason). */
const told: Record<string, number> = {};
const lost: Record<string, number> = {};
/** Device code → when its message arrived (ms since the epoch, from this process's clock). */
const received: Array<[string, number]> = [];
let toldCount = 0;
const bump = (counts: Record<string, number>, key: string) => (counts[key] = (counts[key] ?? 0) + 1);
const send = (message: FromClient) => process.send!(message);

async function open(base: string, codes: string[], batch: number) {
  let opened = 0;
  const failed: Record<string, number> = {};
  await mapLimit(codes, OPEN_IN_FLIGHT, async (code) => {
    const socket = openWaitSocket(base, code);
    try {
      await within(socket.opened, OPEN_TIMEOUT_MS, "open timeout");
    } catch (error) {
      socket.close();
      bump(failed, error instanceof Error ? error.message : String(error));
      return;
    }
    opened++;
    sockets.set(code, socket);
    socket.message.then(
      (message) => {
        received.push([code, performance.timeOrigin + message.at]);
        bump(told, `${message.type}/${message.status ?? ""}`);
        toldCount++;
        socket.close();
      },
      (error: unknown) => bump(lost, error instanceof Error ? error.message : String(error)),
    );
  });
  send({ type: "opened", batch, opened, failed });
}

process.on("message", (message: ToClient) => {
  if (message.type === "open") void open(message.base, message.codes, message.batch);
  else if (message.type === "status") send({ type: "status", open: sockets.size, told: toldCount });
  else {
    // Disconnect only once the answer is written: a large one (thousands of timestamps) would be cut off.
    process.send!({ type: "final", opened: sockets.size, told, lost, received } satisfies FromClient, () => {
      for (const socket of sockets.values()) socket.close();
      process.disconnect();
    });
  }
});
process.on("disconnect", () => setTimeout(() => process.exit(0), 500).unref());
