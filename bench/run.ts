/**
 * `npm run bench [-- --quick]`: Keyferry's hot paths against three ceilings on the same local
 * runtime (workerd through Miniflare's API, direct sockets), interleaved round by round; then
 * delivery latency, and (full run only) memory with 10,000 pending requests and their expiry.
 * Writes bench/results.json and prints a markdown table. bench/README.md explains the method.
 */
import { readFile, writeFile } from "node:fs/promises";
import { cpus, totalmem, release } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { createAgents, issuePool, lookup as lookupOnce, mapLimit, setUpAlarmsRun, type Agent } from "./client.ts";
import { measureCostPerHandoff } from "./cost-per-handoff.ts";
import { measureDelivery } from "./delivery.ts";
import { measureReturnChannelDelivery } from "./delivery-return-channel.ts";
import { measure, round, type RunResult } from "./load.ts";
import { measureMemoryAndExpiry } from "./memory.ts";
import { measureAlternating, measurePaced } from "./paced-load.ts";
import * as paced from "./paced-scenarios.ts";
import { measurePasskeyDecision } from "./passkey-decision.ts";
import { measureReturnChannel10k } from "./return-channel-10k.ts";
import { ROOT, runtimeRssMiB, startRuntime } from "./runtime.ts";
import * as scenarios from "./scenarios.ts";

const quick = process.argv.includes("--quick");
/**
 * `--rounds-only`: the full run's rounds and delivery runs, without the memory and socket runs
 * (about 20 minutes together); their figures are carried over from bench/results.json, marked so.
 */
const roundsOnly = process.argv.includes("--rounds-only");
const ROUNDS = quick ? 1 : 5;
const SECONDS = quick ? 5 : 8;
const CONNECTIONS = 16;
/** do-read and poll alternate in this many slices per round (SECONDS each in all). */
const PAIRED_SLICES = 4;
const DO_READ_NAMES = 1000;
/** Issuance per second the issue run's prepared slots allow at least (the most measured here is 290). */
const ISSUE_RATE_FLOOR = 500;
/** The interval the runtimes enforce (`POLL_INTERVAL_SECONDS`; a fraction is the bench's: clients are told 1 s). */
const POLL_INTERVAL_S = 0.25;
const started = Date.now();
const log = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);

function machine() {
  const require = createRequire(join(ROOT, "node_modules/miniflare/package.json"));
  const version = (name: string) => {
    try {
      return (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      return "unknown";
    }
  };
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memory_gib: round(totalmem() / 2 ** 30),
    os: `${process.platform} ${release()}`,
    node: process.version,
    workerd: version("workerd"),
    miniflare: version("miniflare"),
    date: new Date().toISOString(),
    command: `npm run bench${quick ? " -- --quick" : roundsOnly ? " -- --rounds-only" : ""}`,
    mode: quick ? "quick" : "full",
    rounds: ROUNDS,
    seconds_per_run: SECONDS,
    connections: CONNECTIONS,
  };
}

const median = (values: number[]) => values.slice().sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)]!;

/** One line per scenario: the median round by requests per second, errors summed over rounds. */
function aggregate(rounds: RunResult[][]): RunResult[] {
  const names = rounds[0]!.map((run) => run.name);
  return names.map((name) => {
    const runs = rounds.map((r) => r.find((run) => run.name === name)!);
    const notes: Record<string, number> = {};
    for (const run of runs) for (const [key, value] of Object.entries(run.notes ?? {})) notes[key] = (notes[key] ?? 0) + value;
    return {
      name,
      rps: median(runs.map((r) => r.rps)),
      p50_ms: median(runs.map((r) => r.p50_ms)),
      p99_ms: median(runs.map((r) => r.p99_ms)),
      errors: runs.reduce((sum, r) => sum + r.errors, 0),
      served: runs.reduce((sum, r) => sum + r.served, 0),
      // Every run says how many slow_down answers it drew (a fair poll probe draws none).
      slow_down: notes.slow_down ?? 0,
      ...(Object.keys(notes).length ? { notes } : {}),
    };
  });
}

type RoundRatios = ReturnType<typeof roundRatios>;

function roundRatios(results: RunResult[]) {
  const by = (name: string) => results.find((run) => run.name === name)!;
  return {
    "poll / do-read": round(by("poll").rps / by("do-read").rps, 2),
    "issue / do-create": round(by("issue").rps / by("do-create").rps, 2),
    "poll p99 / do-read p99": round(by("poll").p99_ms / by("do-read").p99_ms, 2),
  };
}

async function main() {
  const info = machine();
  log(`${info.command} on ${info.cpu} × ${info.cores}, workerd ${info.workerd}`);
  // Two workerd processes side by side: reading runs keep their objects in memory, creation runs
  // do not (bench/runtime.ts explains why). Each holds the Keyferry worker and the ceilings.
  const warm = await startRuntime({ POLL_INTERVAL_SECONDS: String(POLL_INTERVAL_S) }, { preventEviction: true });
  const fresh = await startRuntime({ POLL_INTERVAL_SECONDS: String(POLL_INTERVAL_S) });
  const rounds: RunResult[][] = [];
  let delivery;
  let deliveryReturnChannel;
  let passkeyDecision;
  let pollProbe;
  try {
    // Set-up (not measured): seeded objects for do-read, and sizes from two short probes.
    await mapLimit(Array.from({ length: DO_READ_NAMES }, (_, i) => i), 16, (i) => fetch(`${warm.urls.doRead}/?n=${i}&seed=1`).then((r) => r.arrayBuffer()));
    const readProbe = await measurePaced(paced.doRead(warm.urls.doRead, DO_READ_NAMES, CONNECTIONS, 2));
    const createProbe = await measure(scenarios.doCreate(fresh.urls.doCreate, CONNECTIONS, 2));
    log(`probes: do-read ${readProbe.rps}/s, do-create ${createProbe.rps}/s`);

    // The poll run polls each request once per interval, so it can serve at most pool / interval
    // polls a second: as many requests as the reading runtime's file descriptors allow (live
    // objects hold about 3 each, against a limit of 20,000; 6,000 ran out with do-read's 1,000
    // beside them), whatever the 2 s probe said (off by up to 5× from the run that followed). The
    // interval is the server's least (whole seconds). When the pool holds the rate, the run says so
    // (`waits`, and `poll_probe.rate_cap_per_s` in results.json).
    const pollPoolSize = 4000;
    // Enough prepared slots for one issuance run of SECONDS at the do-create ceiling, or at
    // ISSUE_RATE_FLOOR if the 2 s probe, the runtime's first creations, said less: it once said
    // 123/s against 315–440/s in the rounds, and issuance ran out of slots (429s counted as errors).
    const issueAccounts = Math.ceil((Math.max(createProbe.rps, ISSUE_RATE_FLOOR) * SECONDS * 1.1) / 5);
    log(`set-up: ${pollPoolSize / 5} accounts for ${pollPoolSize} pending requests, ${issueAccounts * ROUNDS} accounts for issuance`);
    const pollAgents = await createAgents(warm.urls.keyferry, warm.adminToken, pollPoolSize / 5, "poll");
    const pollPool = await issuePool(warm.urls.keyferry, pollAgents, 5);
    const lookupAgents = await createAgents(warm.urls.keyferry, warm.adminToken, 40, "lookup");
    const lookupPool = await mapLimit(await issuePool(warm.urls.keyferry, lookupAgents, 5), 16, async (p) => ({ ...p, cookie: (await lookupOnce(warm.urls.keyferry, p)).cookie }));
    // A fresh set each round, 320 agents: an agent may open 10 requests a minute (core/limits.ts), so a
    // round's 8 s of handoffs spread over them stays under that up to ~400/s. (80 agents capped the run
    // at 100/s, 80 × 10 in 8 s, and every handoff beyond was a fast 429 counted as an error.)
    const handoffAgents: Agent[][] = [];
    for (let r = 0; r < ROUNDS; r++) handoffAgents.push(await createAgents(fresh.urls.keyferry, fresh.adminToken, CONNECTIONS * 20, `handoff${r}`));
    // Their own accounts: a timed handoff run ends with requests still pending, which hold slots.
    const deliveryAgents = await createAgents(fresh.urls.keyferry, fresh.adminToken, CONNECTIONS * 2, "delivery");
    const returnChannelAgents = await createAgents(fresh.urls.keyferry, fresh.adminToken, CONNECTIONS * 2, "return-channel");
    const issueAgents: Agent[][] = [];
    for (let r = 0; r < ROUNDS; r++) issueAgents.push(await createAgents(fresh.urls.keyferry, fresh.adminToken, issueAccounts, `issue${r}`));
    log(`set-up done; RSS ${await runtimeRssMiB(warm)} MiB (reading runtime), ${await runtimeRssMiB(fresh)} MiB (creation runtime)`);
    // The set-up's invitation alarms (thousands; they fell on the first round) run before any run is timed.
    await setUpAlarmsRun();

    for (let r = 0; r < ROUNDS; r++) {
      const results: RunResult[] = [];
      const report = (result: RunResult) => {
        results.push(result);
        log(`round ${r + 1}/${ROUNDS} ${result.name.padEnd(9)} ${String(result.rps).padStart(7)}/s  p50 ${result.p50_ms} ms  p99 ${result.p99_ms} ms  errors ${result.errors}${result.notes ? " " + JSON.stringify(result.notes) : ""}`);
      };
      const run = async (scenario: ReturnType<typeof scenarios.bare>) => report(await measure(scenario));
      // After a creation run, workerd closes its objects: no other run pays for that (bench/README.md, "How the bench measures").
      const creation = async (scenario: ReturnType<typeof scenarios.bare>) => {
        await run(scenario);
        const waited = await fresh.settle();
        log(`round ${r + 1}/${ROUNDS} ${scenario.name}'s objects ${waited === null ? "still open when the wait gave up" : `closed ${(waited / 1000).toFixed(1)} s after it`}`);
      };
      await run(scenarios.bare(warm.urls.bare, CONNECTIONS, SECONDS));
      // The pair behind the ratio that is hardest to hold, in alternating slices (bench/README.md).
      const polls = paced.poll(warm.urls.keyferry, pollPool, CONNECTIONS, SECONDS, POLL_INTERVAL_S * 1000);
      pollProbe = { pool: pollPool.length, interval_s: POLL_INTERVAL_S, margin_ms: paced.POLL_MARGIN_MS, rate_cap_per_s: polls.rateCap };
      await polls.warm();
      const paired = await measureAlternating(paced.doRead(warm.urls.doRead, DO_READ_NAMES, CONNECTIONS, SECONDS), polls.scenario, PAIRED_SLICES);
      paired.forEach(report);
      await creation(scenarios.doCreate(fresh.urls.doCreate, CONNECTIONS, SECONDS));
      await creation(scenarios.issue(fresh.urls.keyferry, issueAgents[r]!, CONNECTIONS, SECONDS));
      await run(scenarios.lookup(warm.urls.keyferry, lookupPool, CONNECTIONS, SECONDS));
      await creation(scenarios.handoff(fresh.urls.keyferry, handoffAgents[r]!, CONNECTIONS, SECONDS));
      rounds.push(results);
    }
    log("delivery latency: well-behaved pollers, operators approving at random moments");
    delivery = await measureDelivery(fresh.urls.keyferry, deliveryAgents, quick ? 40 : 150, 1);
    log(`delivery: p50 ${delivery.p50} ms, p99 ${delivery.p99} ms over ${delivery.count} handoffs (${delivery.errors} errors${delivery.errors ? " " + JSON.stringify(delivery.error_kinds) : ""})`);
    log("delivery over the return channel: agents wait on GET /v1/credentials/wait, poll at once on `decided`");
    deliveryReturnChannel = await measureReturnChannelDelivery(fresh.urls.keyferry, returnChannelAgents, quick ? 40 : 150);
    const rc = deliveryReturnChannel;
    log("passkey decision: the same handoff decided under the email binding and by a passkey, one at a time");
    passkeyDecision = await measurePasskeyDecision(fresh.urls.keyferry, fresh.adminToken, quick ? 20 : 60);
    log(`passkey decision: decide p50 ${passkeyDecision.decide_email_binding.p50_ms} → ${passkeyDecision.decide_passkey.p50_ms} ms, p99 ${passkeyDecision.decide_email_binding.p99_ms} → ${passkeyDecision.decide_passkey.p99_ms} ms; challenge p50 ${passkeyDecision.challenge.p50_ms} ms`);
    log(`return channel: p50 ${rc.p50} ms, p99 ${rc.p99} ms over ${rc.count} handoffs (${rc.errors} errors${rc.errors ? " " + JSON.stringify(rc.error_kinds) : ""}); parts ${JSON.stringify(rc.parts_ms)}`);
  } finally {
    await warm.dispose();
    await fresh.dispose();
  }
  log("cost per handoff: meters from issuance to expiry, four variants (about 3 minutes)");
  const costPerHandoff = await measureCostPerHandoff(log);

  const runs = aggregate(rounds);
  const by = (name: string) => runs.find((run) => run.name === name)!;
  // Each ratio within its round (runs side by side in time), then the median over rounds.
  const ratiosByRound = rounds.map(roundRatios);
  const ratioOf = (key: keyof RoundRatios) => median(ratiosByRound.map((ratiosOf) => ratiosOf[key]));
  const ratios: RoundRatios = {
    "poll / do-read": ratioOf("poll / do-read"),
    "issue / do-create": ratioOf("issue / do-create"),
    "poll p99 / do-read p99": ratioOf("poll p99 / do-read p99"),
  };
  const targets = {
    "poll / do-read >= 0.8": ratios["poll / do-read"] >= 0.8,
    "issue / do-create >= 0.5": ratios["issue / do-create"] >= 0.5,
    "poll p99 <= 2 x do-read p99": ratios["poll p99 / do-read p99"] <= 2,
    "poll slow_down == 0": by("poll").slow_down === 0,
  };

  let memory: Awaited<ReturnType<typeof measureMemoryAndExpiry>> | { skipped: string };
  const previous = roundsOnly ? await carriedOver() : undefined;
  if (previous?.memory) memory = previous.memory;
  else if (quick || roundsOnly) memory = { skipped: "--quick: memory with 10,000 pending requests and their expiry run only in the full bench" };
  else {
    // Long enough that all 10,000 are pending at once, at the issuance rate just measured.
    const ttl = Math.max(30, Math.ceil((10_000 / Math.max(1, by("issue").rps)) * 1.4) + 20);
    memory = await measureMemoryAndExpiry(ttl, log);
  }

  let sockets: Awaited<ReturnType<typeof measureReturnChannel10k>> | { skipped: string } | { error: string };
  if (previous?.return_channel_10k) sockets = previous.return_channel_10k;
  else if (quick || roundsOnly) sockets = { skipped: "--quick: 10,000 agents waiting on return-channel sockets run only in the full bench" };
  else sockets = await measureReturnChannel10k(log).catch((error: unknown) => ({ error: error instanceof Error ? error.message : String(error) }));

  const results = { machine: info, cost_per_handoff: costPerHandoff, runs, poll_probe: pollProbe, ratios, ratios_by_round: ratiosByRound, targets, delivery_ms: delivery, delivery_return_channel_ms: deliveryReturnChannel, passkey_decision: passkeyDecision, memory, return_channel_10k: sockets, rounds };
  await writeFile(join(ROOT, "bench/results.json"), JSON.stringify(results, null, 2) + "\n");
  console.log("\n" + table(results) + "\n");
  log("wrote bench/results.json");
}

/** The memory and socket runs of the last full run in bench/results.json, marked as carried over. */
async function carriedOver() {
  type Carried = { memory?: Awaited<ReturnType<typeof measureMemoryAndExpiry>>; return_channel_10k?: Awaited<ReturnType<typeof measureReturnChannel10k>> };
  const last = JSON.parse(await readFile(join(ROOT, "bench/results.json"), "utf8").catch(() => "{}")) as Carried & { machine?: { date?: string; command?: string } };
  const from = { carried_over_from: `${last.machine?.command ?? "?"} of ${last.machine?.date ?? "?"}` };
  return {
    ...(last.memory && "rss_mib" in last.memory ? { memory: { ...last.memory, ...from } } : {}),
    ...(last.return_channel_10k && "rss_mb" in last.return_channel_10k ? { return_channel_10k: { ...last.return_channel_10k, ...from } } : {}),
  };
}

function table(results: { poll_probe: { pool: number; interval_s: number; margin_ms: number; rate_cap_per_s: number } | undefined; return_channel_10k: Awaited<ReturnType<typeof measureReturnChannel10k>> | { skipped: string } | { error: string }; machine: ReturnType<typeof machine>; runs: RunResult[]; ratios: Record<string, number>; delivery_ms: Awaited<ReturnType<typeof measureDelivery>> | undefined; delivery_return_channel_ms: Awaited<ReturnType<typeof measureReturnChannelDelivery>> | undefined; memory: Awaited<ReturnType<typeof measureMemoryAndExpiry>> | { skipped: string } }): string {
  const m = results.machine;
  const lines = [
    `Measured ${m.date.slice(0, 10)} with \`${m.command}\` on ${m.cpu} (${m.cores} cores, ${m.memory_gib} GiB), ${m.os}, Node ${m.node}, workerd ${m.workerd} via Miniflare ${m.miniflare} direct sockets; ${m.rounds} interleaved round(s) of ${m.seconds_per_run} s per run, ${m.connections} connections, loopback.`,
    "",
    "| run | requests/s | p50 ms | p99 ms | errors | slow_down |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    ...results.runs.map((r) => `| ${r.name}${r.name === "handoff" ? " (handoffs/s, whole-handoff latency)" : ""} | ${r.rps} | ${r.p50_ms} | ${r.p99_ms} | ${r.errors} | ${r.slow_down ?? 0} |`),
    "",
    "| ratio | value | target |",
    "| --- | ---: | --- |",
    `| poll / do-read (requests/s) | ${results.ratios["poll / do-read"]} | ≥ 0.8 |`,
    `| issue / do-create (requests/s) | ${results.ratios["issue / do-create"]} | ≥ 0.5 |`,
    `| poll p99 / do-read p99 | ${results.ratios["poll p99 / do-read p99"]} | ≤ 2 |`,
  ];
  const probe = results.poll_probe;
  const pollRun = results.runs.find((r) => r.name === "poll");
  if (probe && pollRun) {
    lines.push("", `Poll probe: ${probe.pool} pending requests, each polled once per ${probe.interval_s} s (+${probe.margin_ms} ms), never early: at most ${probe.rate_cap_per_s} polls/s; ${pollRun.slow_down ?? 0} slow_down, ${pollRun.notes?.waits ?? 0} waits for a due request (0: the server, not the pool, held the rate).`);
  }
  if (results.delivery_ms) {
    lines.push("", `Delivery latency (approval → agent holds the credential, polling every ${results.delivery_ms.interval_s} s): p50 ${results.delivery_ms.p50} ms, p99 ${results.delivery_ms.p99} ms over ${results.delivery_ms.count} handoffs, ${results.delivery_ms.slow_down} slow_down.`);
  }
  const rc = results.delivery_return_channel_ms;
  if (rc) {
    const parts = rc.parts_ms;
    lines.push("", `Delivery over the return channel (agent waits on the socket, polls at once on \`decided\`; decide's 200 → poll's 200): p50 ${rc.p50} ms, p99 ${rc.p99} ms over ${rc.count} handoffs, ${rc.errors} errors (decide round trip p50 ${parts.decide_round_trip.p50} / p99 ${parts.decide_round_trip.p99} ms; decide sent → \`decided\` received ${parts.decide_sent_to_message.p50} / ${parts.decide_sent_to_message.p99} ms; \`decided\` → poll 200 ${parts.message_to_poll_200.p50} / ${parts.message_to_poll_200.p99} ms).`);
  }
  if (results.memory && "rss_mib" in results.memory) {
    const mem = results.memory;
    lines.push(
      "",
      `10,000 pending requests (TTL ${mem.ttl_s} s): runtime RSS ${mem.rss_mib.idle} MiB idle → ${mem.rss_mib.with_10k_pending} MiB with all pending (peak ${mem.rss_mib.peak} MiB), ${mem.rss_mib.after_expiry} MiB after expiry. ` +
        `Expired: ${mem.expiry.expired_events}/10000 (lateness p50 ${mem.expiry.lateness_ms.p50} ms, p99 ${mem.expiry.lateness_ms.p99} ms, max ${mem.expiry.lateness_ms.max} ms); request rows left in storage: ${mem.expiry.request_rows_left_in_storage} (status other than delivered; ${mem.expiry.expired_rows_left_in_storage ?? "?"} past their expiry), tombstones ${mem.expiry.tombstones_left_in_storage}; accounts accepting 5 new requests afterwards: ${mem.expiry.accounts_with_free_slots}/${mem.expiry.accounts_checked_for_free_slots}.`,
    );
  } else if (results.memory) lines.push("", `Memory/expiry: ${results.memory.skipped}`);
  const rc10k = results.return_channel_10k;
  if ("rss_mb" in rc10k) {
    lines.push("", `Agents waiting on return-channel sockets: ${rc10k.sockets} of ${rc10k.sockets_wanted} sockets open over ${rc10k.pending_requests} pending requests${rc10k.limited_by ? ` (limited by ${rc10k.limited_by})` : ""}; runtime RSS ${rc10k.rss_mb.before} MiB before the sockets → ${rc10k.rss_mb.waiting} MiB with all waiting → ${rc10k.rss_mb.after} MiB after; ${rc10k.decided} decided, ${rc10k.told} sockets told (${JSON.stringify(rc10k.told_by_message)}), ${rc10k.errors} errors; told p50 ${rc10k.told_after_decide_ms.p50} ms / p99 ${rc10k.told_after_decide_ms.p99} ms after the decide's 200; workerd descriptors ${rc10k.workerd_fds.before} → ${rc10k.workerd_fds.waiting} waiting (${rc10k.workerd_fds.per_open_socket} per socket).`);
  } else lines.push("", `Return-channel sockets: ${"skipped" in rc10k ? rc10k.skipped : `failed: ${rc10k.error}`}`);
  return lines.join("\n");
}

await main();
