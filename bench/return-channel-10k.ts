/**
 * 10,000 agents waiting on open return-channel sockets on one local runtime (full run only):
 * 2,000 accounts × 5 pending requests (issuance is capped per account), each with an agent's
 * socket on `GET /v1/credentials/wait`, held by child processes (bench/return-channel-clients.ts,
 * 2,500 each: the limit here is 20,000 file descriptors per process). RSS of the workerd process
 * before the sockets, while all wait (after more than the 10 s in which local workerd evicts an idle
 * object: the sockets stay with the runtime through the Hibernation API, the objects go), and after
 * every request was decided (every other one approved, the rest denied); every socket must be told.
 *
 * File descriptors decide how many fit: workerd holds two per accepted WebSocket (the connection's
 * socket, duplicated; measured, see bench/README.md) and about 3 per live SQLite object, against a
 * limit of 20,000. So opening pauses while the runtime holds more than OPEN_HIGH descriptors (objects
 * woken by an upgrade are evicted again 10 s later) and stops for good when it cannot go on for
 * STALL_MS: the sockets that fit wait, the other requests wait without one and are decided all the
 * same. Deciding pauses above DECIDE_HIGH (each decision wakes an object, then closes a socket).
 */
import { fork, type ChildProcess } from "node:child_process";
import { api, createAgents, issuePool, lookup, mapLimit, percentile, sleep, type Pending } from "./client.ts";
import { round } from "./load.ts";
import type { FromClient, ToClient } from "./return-channel-clients.ts";
import { runtimeRssMiB, startRuntime, type Runtime } from "./runtime.ts";

const PER_ACCOUNT = 5;
const CLIENT_PROCESSES = 4;
const OPEN_BATCH = 100;
const FD_LIMIT = 20_000;
/** At most CLIENT_PROCESSES × OPEN_BATCH upgrades in flight, each (socket + woken object) about 5 descriptors. */
const OPEN_HIGH = 17_000;
const DECIDE_HIGH = 19_000;
const STALL_MS = 30_000;
/** Local workerd evicts an object idle for 10 s; the waiting reading is taken after this. */
const SETTLE_MS = 15_000;
const TOLD_TIMEOUT_MS = 120_000;
const DEADLINE_MS = 20 * 60_000;

/**
 * Waits while the runtime holds more than `high` descriptors (read at most every 250 ms); false
 * when that lasted `stallMs`.
 */
function fdGuard(runtime: Runtime) {
  let last = 0;
  let fds = 0;
  let pauses = 0;
  let peak = 0;
  const wait = async (high: number, stallMs = Number.POSITIVE_INFINITY) => {
    const since = Date.now();
    for (;;) {
      if (Date.now() - last > 250) {
        fds = runtime.openDescriptors();
        last = Date.now();
        peak = Math.max(peak, fds);
      }
      if (fds <= high) return true;
      if (Date.now() - since > stallMs) return false;
      pauses++;
      await sleep(250);
    }
  };
  return { wait, stats: () => ({ peak, pauses }) };
}

/** One client process, with request/answer over IPC. */
function startClient(): { child: ChildProcess; ask<T extends FromClient["type"]>(message: ToClient, answer: T): Promise<Extract<FromClient, { type: T }>> } {
  const child = fork(new URL("./return-channel-clients.ts", import.meta.url), [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const waiting: Array<{ type: string; batch?: number; resolve: (message: FromClient) => void; reject: (error: Error) => void }> = [];
  let gone: Error | null = null;
  child.on("message", (message: FromClient) => {
    const index = waiting.findIndex((w) => w.type === message.type && (message.type !== "opened" || w.batch === message.batch));
    if (index >= 0) waiting.splice(index, 1)[0]!.resolve(message);
  });
  // A client that exits fails what was asked of it, instead of leaving the run waiting.
  child.on("exit", (code, signal) => {
    gone = new Error(`client process exited (${signal ?? code})`);
    for (const w of waiting.splice(0)) w.reject(gone);
  });
  return {
    child,
    ask: (message, answer) =>
      new Promise((resolve, reject) => {
        if (gone) return reject(gone);
        waiting.push({ type: answer, ...(message.type === "open" ? { batch: message.batch } : {}), resolve: resolve as (message: FromClient) => void, reject });
        child.send(message);
      }),
  };
}

export async function measureReturnChannel10k(log: (line: string) => void, sockets = Number(process.env.BENCH_RC_SOCKETS ?? 10_000)) {
  const started = Date.now();
  const runtime = await startRuntime({ REQUEST_TTL_SECONDS: "3600", POLL_INTERVAL_SECONDS: "1" });
  const base = runtime.urls.keyferry;
  const clients = Array.from({ length: CLIENT_PROCESSES }, startClient);
  const guard = fdGuard(runtime);
  const killer = setTimeout(() => {
    log("return channel 10k: deadline passed, stopping");
    for (const { child } of clients) child.kill("SIGKILL");
  }, DEADLINE_MS);
  try {
    log(`return channel 10k: ${sockets / PER_ACCOUNT} accounts, ${sockets} pending requests`);
    const agents = await createAgents(base, runtime.adminToken, sockets / PER_ACCOUNT, "rc10k");
    const rssIdle = await runtimeRssMiB(runtime);
    const issueStart = Date.now();
    const pending: Pending[] = await issuePool(base, agents, PER_ACCOUNT);
    const issueSeconds = round((Date.now() - issueStart) / 1000);
    await sleep(SETTLE_MS);
    const rssBefore = await runtimeRssMiB(runtime);
    const fdsBefore = runtime.openDescriptors();
    log(`return channel 10k: ${pending.length} pending (issued in ${issueSeconds} s); RSS ${rssIdle} MiB idle, ${rssBefore} MiB before the sockets; ${fdsBefore} fds`);

    // Open the sockets in batches, spread over the client processes.
    const openStart = Date.now();
    let opened = 0;
    const openFailures: Record<string, number> = {};
    const batches = Array.from({ length: Math.ceil(pending.length / OPEN_BATCH) }, (_, b) => pending.slice(b * OPEN_BATCH, (b + 1) * OPEN_BATCH));
    let full = false;
    await mapLimit(batches, CLIENT_PROCESSES, async (batch, b) => {
      if (full || !(await guard.wait(OPEN_HIGH, STALL_MS))) {
        full = true;
        return;
      }
      const answer = await clients[b % CLIENT_PROCESSES]!.ask({ type: "open", batch: b, base, codes: batch.map((p) => p.deviceCode) }, "opened");
      opened += answer.opened;
      for (const [kind, n] of Object.entries(answer.failed)) openFailures[kind] = (openFailures[kind] ?? 0) + n;
    });
    const openSeconds = round((Date.now() - openStart) / 1000);
    log(`return channel 10k: ${opened} sockets open in ${openSeconds} s${full ? " (no more fit in workerd's descriptors)" : ""} (${JSON.stringify(openFailures)}); waiting ${SETTLE_MS / 1000} s`);
    await sleep(SETTLE_MS);
    const rssWaiting = await runtimeRssMiB(runtime);
    const fdsWaiting = runtime.openDescriptors();
    log(`return channel 10k: all waiting, RSS ${rssWaiting} MiB, ${fdsWaiting} fds`);

    // Every request decided: look-up (its own address: the limit is per CF-Connecting-IP) and decide.
    const decideStart = Date.now();
    const decidedAt = new Map<string, number>();
    const decideErrors: Record<string, number> = {};
    await mapLimit(pending, 16, async (p, i) => {
      await guard.wait(DECIDE_HIGH);
      try {
        const { cookie, approvalToken } = await lookup(base, p);
        const decision = i % 2 === 0 ? { decision: "approve", credential_value: `rc10k-${i}` } : { decision: "deny" };
        const answer = await api(base, "POST", "/v1/approvals/decide", { approval_token: approvalToken, ...decision }, { Cookie: cookie });
        if (answer.status !== 200) {
          decideErrors[`decide ${answer.status}`] = (decideErrors[`decide ${answer.status}`] ?? 0) + 1;
          return;
        }
        decidedAt.set(p.deviceCode, performance.timeOrigin + performance.now());
        if (decidedAt.size % 2000 === 0) log(`return channel 10k: ${decidedAt.size} decided`);
      } catch (error) {
        const kind = error instanceof Error ? error.message.slice(0, 40) : String(error);
        decideErrors[kind] = (decideErrors[kind] ?? 0) + 1;
      }
    });
    const decideSeconds = round((Date.now() - decideStart) / 1000);
    // Every socket told, or the bound passed.
    const toldBy = Date.now() + TOLD_TIMEOUT_MS;
    let toldSoFar = 0;
    while (Date.now() < toldBy) {
      const status = await Promise.allSettled(clients.map((c) => c.ask({ type: "status" }, "status")));
      toldSoFar = status.reduce((sum, s) => sum + (s.status === "fulfilled" ? s.value.told : 0), 0);
      if (toldSoFar >= opened || status.some((s) => s.status === "rejected")) break;
      await sleep(1000);
    }
    const settled = await Promise.allSettled(clients.map((c) => c.ask({ type: "finish" }, "final")));
    const finals = settled.flatMap((f) => (f.status === "fulfilled" ? [f.value] : []));
    const clientsLost = settled.length - finals.length;
    log(`return channel 10k: ${decidedAt.size} decided in ${decideSeconds} s, ${toldSoFar} told`);
    await sleep(SETTLE_MS);
    const rssAfter = await runtimeRssMiB(runtime);
    const fdsAfter = runtime.openDescriptors();

    const told: Record<string, number> = {};
    const lost: Record<string, number> = {};
    const lateness: number[] = [];
    for (const final of finals) {
      for (const [kind, n] of Object.entries(final.told)) told[kind] = (told[kind] ?? 0) + n;
      for (const [kind, n] of Object.entries(final.lost)) lost[kind] = (lost[kind] ?? 0) + n;
      for (const [code, at] of final.received) {
        const decided = decidedAt.get(code);
        if (decided !== undefined) lateness.push(at - decided);
      }
    }
    lateness.sort((a, b) => a - b);
    const toldTotal = Object.values(told).reduce((sum, n) => sum + n, 0);
    if (clientsLost) lost["client process lost"] = clientsLost;
    const errorCount = [openFailures, decideErrors, lost].flatMap((kinds) => Object.values(kinds)).reduce((sum, n) => sum + n, 0) + Math.max(0, opened - toldTotal - Object.values(lost).reduce((s, n) => s + n, 0));
    return {
      sockets: opened,
      pending_requests: pending.length,
      sockets_wanted: sockets,
      /** Why `sockets` is short of `sockets_wanted`, if it is. */
      limited_by: opened < sockets ? `workerd's ${FD_LIMIT} file descriptors: ${round((fdsWaiting - fdsBefore) / Math.max(1, opened), 2)} per open socket` : null,
      client_processes: CLIENT_PROCESSES,
      decided: decidedAt.size,
      told: toldTotal,
      told_by_message: told,
      errors: errorCount,
      error_kinds: { open: openFailures, decide: decideErrors, socket_ended_untold: lost },
      /** The decide's 200 → the message in the agent's process; a message can beat the 200 (negative). */
      told_after_decide_ms: { p50: round(percentile(lateness, 50)), p99: round(percentile(lateness, 99)), max: round(lateness.at(-1) ?? Number.NaN) },
      rss_mb: { idle: rssIdle, before: rssBefore, waiting: rssWaiting, after: rssAfter },
      workerd_fds: { limit: FD_LIMIT, per_open_socket: round((fdsWaiting - fdsBefore) / Math.max(1, opened), 2), before: fdsBefore, waiting: fdsWaiting, after: fdsAfter, peak_seen: guard.stats().peak, guard_pauses: guard.stats().pauses },
      seconds: { issue: issueSeconds, open: openSeconds, decide: decideSeconds, total: round((Date.now() - started) / 1000) },
    };
  } finally {
    clearTimeout(killer);
    for (const { child } of clients) if (child.connected) child.disconnect();
    await runtime.dispose();
  }
}
