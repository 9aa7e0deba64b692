/**
 * 10,000 pending requests at once (2,000 accounts × the contract's 5): the runtime's memory with
 * them live, then proof that every one expires on time. Uses its own runtime with a short
 * REQUEST_TTL_SECONDS and a persist directory, so the storage left afterwards can be scanned.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { api, createAgents, mapLimit, percentile, sleep, type Agent } from "./client.ts";
import { measure, round } from "./load.ts";
import { ROOT, runtimeRssMiB, startRuntime } from "./runtime.ts";
import { issue as issueScenario } from "./scenarios.ts";
import { scanRequestRows } from "./storage-scan.ts";

const REQUESTS = 10_000;
const PER_ACCOUNT = 5;

export async function measureMemoryAndExpiry(ttlSeconds: number, log: (line: string) => void) {
  const persistDir = await mkdtemp(join(ROOT, "bench/.tmp/persist-"));
  const runtime = await startRuntime({ REQUEST_TTL_SECONDS: String(ttlSeconds) }, { persistDir });
  const base = runtime.urls.keyferry;
  try {
    log(`memory: creating ${REQUESTS / PER_ACCOUNT} accounts (TTL ${ttlSeconds} s)`);
    const agents = await createAgents(base, runtime.adminToken, REQUESTS / PER_ACCOUNT, "mem");
    const rssIdle = await runtimeRssMiB(runtime);
    let rssPeak = rssIdle;
    const sampler = setInterval(() => void runtimeRssMiB(runtime).then((mib) => (rssPeak = Math.max(rssPeak, mib))), 500);
    const issueStart = Date.now();
    const issued = await measure({ ...issueScenario(base, agents, 16), name: "issue-10k" });
    const issueEnd = Date.now();
    clearInterval(sampler);
    const rssPending = await runtimeRssMiB(runtime);
    rssPeak = Math.max(rssPeak, rssPending);
    log(`memory: issued ${issued.served} in ${round((issueEnd - issueStart) / 1000)} s; RSS idle ${rssIdle} MiB, with 10k pending ${rssPending} MiB, peak ${rssPeak} MiB`);
    if (issued.served !== REQUESTS) throw new Error(`only ${issued.served} of ${REQUESTS} requests were issued (${issued.errors} errors)`);

    // Every request's alarm is due by issueEnd + TTL; give the alarms a little time to run.
    const due = issueEnd + ttlSeconds * 1000;
    log(`memory: waiting ${round((due - Date.now()) / 1000 + 10)} s for the last expiry`);
    while (Date.now() < due + 10_000) await sleep(1000);
    const rssAfter = await runtimeRssMiB(runtime);

    const expiry = await checkExpiry(base, runtime.adminToken, agents, ttlSeconds);
    log(`memory: ${expiry.expired_events} expired events, lateness p50 ${expiry.lateness_ms.p50} ms p99 ${expiry.lateness_ms.p99} ms max ${expiry.lateness_ms.max} ms; slots free on ${expiry.accounts_with_free_slots} accounts`);
    await runtime.dispose();
    const stored = scanRequestRows(persistDir);
    return {
      requests: REQUESTS,
      ttl_s: ttlSeconds,
      issue_seconds: round((issueEnd - issueStart) / 1000),
      rss_mib: { idle: rssIdle, with_10k_pending: rssPending, peak: rssPeak, after_expiry: rssAfter },
      expiry: { ...expiry, request_rows_left_in_storage: stored.rows, tombstones_left_in_storage: stored.tombstones,
        // The free-slot check's 1,000 new requests are still pending (not expired) when the runtime stops.
        expired_rows_left_in_storage: stored.expired, sqlite_files_scanned: stored.files },
    };
  } finally {
    await runtime.dispose().catch(() => undefined);
    await rm(persistDir, { recursive: true, force: true });
  }
}


/** From each account's audit log: every request has an `expired` event, how late, and the slots are free again. */
async function checkExpiry(base: string, adminToken: string, agents: Agent[], ttlSeconds: number) {
  const admin = { Authorization: `Bearer ${adminToken}` };
  const lateness: number[] = [];
  let expiredEvents = 0;
  let missing = 0;
  const audits = await mapLimit(agents, 16, (agent) => api<{ events?: Array<{ at: string; type: string; request_id?: string }> }>(base, "GET", `/v1/admin/accounts/${agent.accountId}/audit`, undefined, admin));
  for (const audit of audits) {
    const events = audit.json.events ?? [];
    const requested = new Map(events.filter((e) => e.type === "requested").map((e) => [e.request_id, Date.parse(e.at)]));
    for (const event of events) {
      if (event.type !== "expired") continue;
      expiredEvents++;
      const at = requested.get(event.request_id);
      if (at !== undefined) lateness.push(Date.parse(event.at) - (at + ttlSeconds * 1000));
    }
    missing += requested.size - events.filter((e) => e.type === "expired").length;
  }
  // Each account must again accept 5 new requests: its slots were freed by the alarms.
  const freed = await mapLimit(agents.slice(0, 200), 16, async (agent) => {
    const answers = await mapLimit([1, 2, 3, 4, 5], 5, () =>
      api(base, "POST", "/v1/credentials/request", { description: "after expiry", vault_key: "k" }, { Authorization: `Bearer ${agent.apiKey}` }),
    );
    return answers.every((a) => a.status === 200);
  });
  lateness.sort((a, b) => a - b);
  return {
    expired_events: expiredEvents,
    missing_expired_events: missing,
    lateness_ms: { p50: percentile(lateness, 50), p99: percentile(lateness, 99), max: lateness.at(-1) ?? Number.NaN },
    accounts_checked_for_free_slots: freed.length,
    accounts_with_free_slots: freed.filter(Boolean).length,
  };
}
