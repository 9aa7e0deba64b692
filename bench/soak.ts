/**
 * `npm run bench:soak`: 1,000 complete handoffs with 50 concurrent agents (25 accounts × 2 agents,
 * so no account nears its 5 active requests) against one `wrangler dev` (test/e2e/support/dev-server.ts),
 * operators approving through the API (look-up + decide; bench/soak-handoffs.ts). Reports: each
 * credential delivered exactly once (a second poll gets invalid_grant, and raises the replay alarm),
 * none lost, none duplicated or crossed, no 5xx, and no credential value left anywhere in the persist
 * directory afterwards (bench/storage-scan.ts; delivered requests' tombstones are counted apart).
 * Every account's webhook points at a loopback receiver that fails a third of its calls at random
 * (503): every handoff's `credential.requested`, `.approved` and `.delivered` must arrive through the
 * outbox's retries (waited for, bounded by NOTIFY_DRAIN_MS), and no event may come again once
 * acknowledged. Writes bench/soak-results.json.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { api, createAgents, mapLimit, percentile, sleep, type Agent } from "./client.ts";
import { round } from "./load.ts";
import { ROOT } from "./runtime.ts";
import { runHandoffs } from "./soak-handoffs.ts";
import { scanForSecrets } from "./storage-scan.ts";
import { notificationTally, startWebhookReceiver } from "./webhook-receiver.ts";
import { startDevServer } from "../test/e2e/support/dev-server.ts";

const HANDOFFS = Number(process.env.SOAK_HANDOFFS ?? 1000);
const AGENTS = 50;
const ACCOUNTS = 25;
const OPERATORS = 10;
const HANDOFF_TIMEOUT_MS = 60_000;
const WEBHOOK_FAILURE_RATE = 1 / 3;
/** How long the soak waits for the outbox to deliver every event after the handoffs (retries back off up to 10 min). */
const NOTIFY_DRAIN_MS = Number(process.env.NOTIFY_DRAIN_MS ?? 10 * 60_000);
const LIFECYCLE = ["credential.requested", "credential.approved", "credential.delivered"];
const started = Date.now();
const log = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);

const VARS = {
  POLL_INTERVAL_SECONDS: "1",
  ALLOW_HTTP_WEBHOOKS: "true",
  // The soak counts every event; the per-account cap (a flood guard for humans) would hold most back.
  NOTIFY_BURST: "1000000",
  // Backoff capped at 30 s instead of 10 min: a third of calls failing at random leaves a tail of
  // events failing 7 or 8 times in a row, which the default cap would spread over 20 minutes.
  NOTIFY_MAX_RETRY_DELAY_SECONDS: "30",
};

/** Every account's audit events of one type, summed. */
async function auditCount(url: string, admin: Record<string, string>, owners: Agent[], type: string): Promise<number> {
  const counts = await mapLimit(owners, 5, async (owner) => {
    const audit = await api(url, "GET", `/v1/admin/accounts/${owner.accountId}/audit`, undefined, admin);
    return (audit.json.events as Array<{ type: string }>).filter((e) => e.type === type).length;
  });
  return counts.reduce((sum, n) => sum + n, 0);
}

async function main() {
  // Our own directory (not the dev server's temporary one): it is scanned after the server stops.
  const persistDir = await mkdtemp(join(tmpdir(), "keyferry-soak-"));
  const runId = randomBytes(4).toString("hex");
  const marker = `soak-vk-${runId}`;
  log(`wrangler dev (persist ${persistDir}); ${HANDOFFS} handoffs, ${AGENTS} agents over ${ACCOUNTS} accounts, ${OPERATORS} operators`);
  const server = await startDevServer({ vars: VARS, persistDir });
  const receiver = await startWebhookReceiver(WEBHOOK_FAILURE_RATE);
  try {
    // 25 accounts with 2 agents each.
    const owners = await createAgents(server.url, server.adminToken, ACCOUNTS, `soak-${runId}`);
    const admin = { Authorization: `Bearer ${server.adminToken}` };
    const agents: Agent[] = [...owners];
    await mapLimit(owners, 5, (owner) =>
      api(server.url, "PATCH", `/v1/admin/accounts/${owner.accountId}`, { webhook_url: `${receiver.origin}/hooks/${owner.accountId}` }, admin),
    );
    for (const owner of owners) {
      const second = await api<{ agent_id: string; api_key: string }>(server.url, "POST", `/v1/admin/accounts/${owner.accountId}/agents`, { name: "soak-agent-b" }, admin);
      agents.push({ ...owner, agentId: second.json.agent_id, apiKey: second.json.api_key });
    }
    log(`${agents.length} agents ready`);

    const tally = await runHandoffs(agents, { url: server.url, runId, marker, handoffs: HANDOFFS, operators: OPERATORS, handoffTimeoutMs: HANDOFF_TIMEOUT_MS });
    log(`handoffs done: ${tally.delivered}/${HANDOFFS} delivered`);

    // The outbox keeps retrying the receiver's failures: wait (bounded) until every event is in.
    const drainStarted = Date.now();
    let notifications = notificationTally(receiver.events, tally.descriptions, LIFECYCLE);
    while (notifications.missing > 0 && Date.now() - drainStarted < NOTIFY_DRAIN_MS) {
      await sleep(5_000);
      notifications = notificationTally(receiver.events, tally.descriptions, LIFECYCLE);
      log(`notifications: ${notifications.missing} events still missing, ${receiver.calls.total} calls (${receiver.calls.failed} failed on purpose)`);
    }
    const drainSeconds = round((Date.now() - drainStarted) / 1000);
    const replayedEvents = [...receiver.events.values()].filter((e) => e.type === "credential.replayed" && e.acknowledged > 0).length;

    // Every handoff shows in its account's audit log as delivered (which also freed its slot).
    await sleep(1500);
    const deliveredEvents = await auditCount(server.url, admin, owners, "delivered");
    const replayAudits = await auditCount(server.url, admin, owners, "replay_detected");
    const notificationFailures = await auditCount(server.url, admin, owners, "notification_failed");
    await server.stop();

    const scan = scanForSecrets(persistDir, [...new Set([...tally.deliveredValues, ...tally.values.values()])], marker);
    const sortedDelivery = tally.deliveryMs.filter(Number.isFinite).sort((a, b) => a - b);
    const sortedHandoff = tally.handoffMs.sort((a, b) => a - b);
    const lost = tally.lost + (tally.issued - tally.delivered - tally.lost);
    const results: Record<string, unknown> = {
      date: new Date().toISOString(),
      command: "npm run bench:soak",
      handoffs: HANDOFFS,
      agents: AGENTS,
      accounts: ACCOUNTS,
      operators: OPERATORS,
      seconds: round((Date.now() - started) / 1000),
      issued: tally.issued,
      approved: tally.approved,
      delivered: tally.delivered,
      delivered_exactly_once: tally.secondPollInvalidGrant,
      lost,
      duplicated_or_crossed: tally.wrongValue,
      responses_5xx: tally.fiveXx,
      issuance_429_waited_out: tally.rateLimited,
      unexpected: tally.unexpected.slice(0, 20),
      unexpected_count: tally.unexpected.length,
      delivery_ms: { p50: round(percentile(sortedDelivery, 50)), p99: round(percentile(sortedDelivery, 99)) },
      handoff_ms: { p50: round(percentile(sortedHandoff, 50)), p99: round(percentile(sortedHandoff, 99)) },
      delivered_audit_events: deliveredEvents,
      // The second poll of each delivered code is a replay (README, "Contract notes": replay alarm): one alert per request.
      replay_detected_audit_events: replayAudits,
      webhooks: {
        failure_rate: round(WEBHOOK_FAILURE_RATE),
        expected_events: tally.descriptions.size * LIFECYCLE.length,
        ...notifications,
        replayed_events_acknowledged: replayedEvents,
        calls: receiver.calls.total,
        calls_failed_on_purpose: receiver.calls.failed,
        calls_unsigned: receiver.calls.unsigned,
        drain_seconds: drainSeconds,
        notification_failed_audited: notificationFailures,
      },
      storage_scan: scan,
    };
    const ok =
      tally.delivered === HANDOFFS &&
      tally.secondPollInvalidGrant === HANDOFFS &&
      tally.wrongValue === 0 &&
      tally.fiveXx === 0 &&
      tally.unexpected.length === 0 &&
      scan.credential_values_found === 0 &&
      scan.request_rows_left === 0 &&
      scan.marker_found &&
      deliveredEvents === HANDOFFS &&
      notifications.missing === 0 &&
      notifications.acknowledged_twice === 0 &&
      receiver.calls.unsigned === 0 &&
      notificationFailures === 0;
    results.pass = ok;
    await writeFile(join(ROOT, "bench/soak-results.json"), JSON.stringify(results, null, 2) + "\n");
    console.log(`\nSoak ${ok ? "PASSED" : "FAILED"}: ${tally.delivered}/${HANDOFFS} delivered, ${tally.secondPollInvalidGrant} second polls got invalid_grant (${replayAudits} replay alarms), ` +
      `${lost} lost, ${tally.wrongValue} duplicated or crossed, ${tally.fiveXx} 5xx, ${tally.unexpected.length} other unexpected answers; ` +
      `delivery p50 ${round(percentile(sortedDelivery, 50))} ms; storage: ${scan.files} files, ${scan.credential_values_found} credential values found, ` +
      `${scan.request_rows_left} request rows left (${scan.tombstones_left} delivered tombstones), positive control ${scan.marker_found ? "found" : "NOT found"}; ` +
      `webhooks: ${notifications.events} events, ${notifications.missing} missing, ${notifications.acknowledged_twice} sent again after acknowledgement, ` +
      `${receiver.calls.total} calls (${receiver.calls.failed} failed on purpose), drained in ${drainSeconds} s.`);
    log("wrote bench/soak-results.json");
    if (!ok) process.exitCode = 1;
  } finally {
    await server.stop();
    await receiver.close();
    await rm(persistDir, { recursive: true, force: true });
  }
}

await main();
