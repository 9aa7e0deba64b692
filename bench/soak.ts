/**
 * `npm run bench:soak`: 1,000 complete handoffs with 50 concurrent agents (25 accounts × 2 agents,
 * so no account nears its 5 active requests) against one `wrangler dev`, operators approving
 * through the API (look-up + decide). Reports: each credential delivered exactly once (a second
 * poll gets invalid_grant), none lost, none duplicated or crossed, no 5xx, and no credential value
 * left anywhere in the persist directory afterwards. Every account's webhook points at a loopback
 * receiver that fails a third of its calls at random (503): every handoff's `credential.requested`,
 * `.approved` and `.delivered` must arrive through the outbox's retries (waited for, bounded by
 * NOTIFY_DRAIN_MS), and no event may come again once acknowledged. Writes bench/soak-results.json.
 *
 * It keeps its own `wrangler dev` start-up rather than test/e2e/support/dev-server.ts: Node runs
 * these scripts by stripping types, which needs `.ts` in import specifiers, and dev-server.ts
 * imports without them; the one piece both need, `freePort`, lives in a file without imports of ours.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { api, createAgents, mapLimit, nextIp, percentile, sleep, type Agent, type Pending } from "./client.ts";
import { round } from "./load.ts";
import { ROOT } from "./runtime.ts";
import { notificationTally, startWebhookReceiver } from "./webhook-receiver.ts";
import { freePort } from "../test/e2e/support/free-port.ts";

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

/** One `wrangler dev` on loopback in its own process group, with its own persist directory and secrets. */
async function startWranglerDev(persistDir: string) {
  const port = await freePort();
  const adminToken = randomBytes(24).toString("base64url");
  const vars = {
    ADMIN_TOKEN: adminToken,
    TOKEN_SIGNING_KEY: randomBytes(32).toString("base64url"),
    POLL_INTERVAL_SECONDS: "1",
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    ALLOW_HTTP_WEBHOOKS: "true",
    // The soak counts every event; the per-account cap (a flood guard for humans) would hold most back.
    NOTIFY_BURST: "1000000",
    // Backoff capped at 30 s instead of 10 min: a third of calls failing at random leaves a tail of
    // events failing 7 or 8 times in a row, which the default cap would spread over 20 minutes.
    NOTIFY_MAX_RETRY_DELAY_SECONDS: "30",
  };
  const args = [
    join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "dev",
    "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(await freePort()),
    "--persist-to", persistDir, "--show-interactive-dev-session=false", "--log-level", "warn",
    ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
  ];
  let output = "";
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-50_000)));
  child.stderr?.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-50_000)));
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const stop = async () => {
    try {
      process.kill(-child.pid!, "SIGTERM");
    } catch {
      // already gone
    }
    await Promise.race([exited, sleep(5000)]);
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  };
  process.once("exit", () => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/.well-known/oauth-authorization-server`, { signal: AbortSignal.timeout(3000) });
      await res.arrayBuffer();
      if (res.status < 500) return { url, adminToken, stop, logs: () => output };
    } catch {
      // not listening yet
    }
    await sleep(300);
  }
  await stop();
  throw new Error(`wrangler dev did not start:\n${output}`);
}

interface Tally {
  issued: number;
  approved: number;
  delivered: number;
  secondPollInvalidGrant: number;
  wrongValue: number;
  lost: number;
  fiveXx: number;
  unexpected: Array<{ step: string; status: number; error?: string }>;
  deliveryMs: number[];
  handoffMs: number[];
}

async function main() {
  const persistDir = await mkdtemp(join(tmpdir(), "keyferry-soak-"));
  const runId = randomBytes(4).toString("hex");
  const marker = `soak-vk-${runId}`;
  log(`wrangler dev (persist ${persistDir}); ${HANDOFFS} handoffs, ${AGENTS} agents over ${ACCOUNTS} accounts, ${OPERATORS} operators`);
  const server = await startWranglerDev(persistDir);
  const receiver = await startWebhookReceiver(WEBHOOK_FAILURE_RATE);
  const descriptions = new Set<string>();
  let handoffNumber = 0;
  const tally: Tally = { issued: 0, approved: 0, delivered: 0, secondPollInvalidGrant: 0, wrongValue: 0, lost: 0, fiveXx: 0, unexpected: [], deliveryMs: [], handoffMs: [] };
  const values = new Map<string, string>(); // device code → value the operator approved
  const deliveredValues = new Set<string>();
  const approvedAt = new Map<string, number>();
  const queue: Pending[] = [];
  let remaining = HANDOFFS;
  let issuing = true;
  let results: Record<string, unknown> = {};

  const note = (step: string, status: number, body: object) => {
    if (status >= 500) tally.fiveXx++;
    tally.unexpected.push({ step, status, ...("error" in body && typeof body.error === "string" ? { error: body.error } : {}) });
  };

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

    const operator = async () => {
      while (issuing || queue.length > 0) {
        const pending = queue.shift();
        if (!pending) {
          await sleep(20);
          continue;
        }
        const value = `soak-secret-${runId}-${randomBytes(12).toString("hex")}`;
        const looked = await api(server.url, "POST", "/v1/approvals/lookup", { user_code: pending.userCode, email: pending.agent.operatorEmail }, { "CF-Connecting-IP": nextIp() });
        if (looked.status !== 200) {
          note("lookup", looked.status, looked.json);
          continue;
        }
        const cookie = looked.headers.get("set-cookie")?.split(";")[0] ?? "";
        values.set(pending.deviceCode, value);
        const decided = await api(server.url, "POST", "/v1/approvals/decide", { approval_token: looked.json.approval_token, decision: "approve", credential_value: value }, { Cookie: cookie });
        if (decided.status !== 200) {
          values.delete(pending.deviceCode);
          note("decide", decided.status, decided.json);
          continue;
        }
        approvedAt.set(pending.deviceCode, performance.now());
        tally.approved++;
      }
    };

    const agentLoop = async (agent: Agent) => {
      while (remaining > 0) {
        remaining--;
        const begun = performance.now();
        const description = `Soak handoff ${runId} #${++handoffNumber}`;
        const issued = await api<{ device_code: string; user_code: string; interval: number }>(server.url, "POST", "/v1/credentials/request", { description, vault_key: marker }, { Authorization: `Bearer ${agent.apiKey}` });
        if (issued.status !== 200) {
          note("request", issued.status, issued.json);
          continue;
        }
        tally.issued++;
        descriptions.add(description);
        const pending: Pending = { agent, deviceCode: issued.json.device_code, userCode: issued.json.user_code };
        queue.push(pending);
        // A well-behaved poller: wait the interval, add 5 s on slow_down (RFC 8628 §3.5).
        let interval = issued.json.interval as number;
        let done = false;
        while (!done) {
          if (performance.now() - begun > HANDOFF_TIMEOUT_MS) {
            tally.lost++;
            break;
          }
          await sleep(interval * 1000);
          const polled = await api(server.url, "POST", "/v1/credentials/poll", { device_code: pending.deviceCode });
          if (polled.status === 200) {
            done = true;
            const expected = values.get(pending.deviceCode);
            const value = polled.json.credential_value as string;
            if (value !== expected || deliveredValues.has(value)) tally.wrongValue++;
            deliveredValues.add(value);
            tally.delivered++;
            tally.deliveryMs.push(performance.now() - (approvedAt.get(pending.deviceCode) ?? Number.NaN));
            tally.handoffMs.push(performance.now() - begun);
            const again = await api(server.url, "POST", "/v1/credentials/poll", { device_code: pending.deviceCode });
            if (again.status === 400 && again.json.error === "invalid_grant") tally.secondPollInvalidGrant++;
            else note("second poll", again.status, again.json);
          } else if (polled.json.error === "slow_down") interval += 5;
          else if (polled.json.error !== "authorization_pending") {
            note("poll", polled.status, polled.json);
            done = true;
          }
        }
      }
    };

    const operators = Array.from({ length: OPERATORS }, operator);
    await Promise.all(agents.map(agentLoop));
    issuing = false;
    await Promise.all(operators);
    log(`handoffs done: ${tally.delivered}/${HANDOFFS} delivered`);

    // The outbox keeps retrying the receiver's failures: wait (bounded) until every event is in.
    const drainStarted = Date.now();
    let notifications = notificationTally(receiver.events, descriptions, LIFECYCLE);
    while (notifications.missing > 0 && Date.now() - drainStarted < NOTIFY_DRAIN_MS) {
      await sleep(5_000);
      notifications = notificationTally(receiver.events, descriptions, LIFECYCLE);
      log(`notifications: ${notifications.missing} events still missing, ${receiver.calls.total} calls (${receiver.calls.failed} failed on purpose)`);
    }
    const drainSeconds = round((Date.now() - drainStarted) / 1000);

    // Every handoff shows in its account's audit log as delivered (which also freed its slot).
    await sleep(1500);
    const deliveredEvents = (
      await mapLimit(owners, 5, async (owner) => {
        const audit = await api(server.url, "GET", `/v1/admin/accounts/${owner.accountId}/audit`, undefined, admin);
        return (audit.json.events as Array<{ type: string }>).filter((e) => e.type === "delivered").length;
      })
    ).reduce((sum, n) => sum + n, 0);
    const notificationFailures = (
      await mapLimit(owners, 5, async (owner) => {
        const audit = await api(server.url, "GET", `/v1/admin/accounts/${owner.accountId}/audit`, undefined, admin);
        return (audit.json.events as Array<{ type: string }>).filter((e) => e.type === "notification_failed").length;
      })
    ).reduce((sum, n) => sum + n, 0);
    await server.stop();

    const scan = scanPersistDir(persistDir, [...new Set([...deliveredValues, ...values.values()])], marker);
    const sortedDelivery = tally.deliveryMs.filter(Number.isFinite).sort((a, b) => a - b);
    const sortedHandoff = tally.handoffMs.sort((a, b) => a - b);
    results = {
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
      lost: tally.lost + (tally.issued - tally.delivered - tally.lost),
      duplicated_or_crossed: tally.wrongValue,
      responses_5xx: tally.fiveXx,
      unexpected: tally.unexpected.slice(0, 20),
      unexpected_count: tally.unexpected.length,
      delivery_ms: { p50: round(percentile(sortedDelivery, 50)), p99: round(percentile(sortedDelivery, 99)) },
      handoff_ms: { p50: round(percentile(sortedHandoff, 50)), p99: round(percentile(sortedHandoff, 99)) },
      delivered_audit_events: deliveredEvents,
      webhooks: {
        failure_rate: round(WEBHOOK_FAILURE_RATE),
        expected_events: descriptions.size * LIFECYCLE.length,
        ...notifications,
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
    console.log(`\nSoak ${ok ? "PASSED" : "FAILED"}: ${tally.delivered}/${HANDOFFS} delivered, ${tally.secondPollInvalidGrant} second polls got invalid_grant, ` +
      `${results.lost} lost, ${tally.wrongValue} duplicated or crossed, ${tally.fiveXx} 5xx, ${tally.unexpected.length} other unexpected answers; ` +
      `delivery p50 ${results.delivery_ms && (results.delivery_ms as { p50: number }).p50} ms; storage: ${scan.files} files, ${scan.credential_values_found} credential values found, ` +
      `${scan.request_rows_left} request rows left, positive control ${scan.marker_found ? "found" : "NOT found"}; ` +
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

/**
 * Reads every file wrangler left (SQLite databases, WAL and journal files, blobs) as bytes and
 * looks for every credential value; opens each SQLite file to count RequestDO rows still there. The
 * vault key name, which the audit log keeps on purpose, is the positive control that the scan sees data.
 */
function scanPersistDir(dir: string, secrets: string[], marker: string) {
  let files = 0;
  let bytes = 0;
  let found = 0;
  let rows = 0;
  let markerFound = false;
  const needles = secrets.map((s) => Buffer.from(s));
  const walk = (path: string) => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) {
        walk(full);
        continue;
      }
      files++;
      const content = readFileSync(full);
      bytes += content.length;
      if (content.includes(marker)) markerFound = true;
      for (const needle of needles) if (content.includes(needle)) found++;
      if (entry.name.endsWith(".sqlite")) {
        const db = new DatabaseSync(full, { readOnly: true });
        try {
          if (db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'request'").get()) {
            rows += Number((db.prepare("SELECT COUNT(*) AS n FROM request").get() as { n: number }).n);
          }
        } finally {
          db.close();
        }
      }
    }
  };
  walk(dir);
  return { files, bytes, credential_values_checked: secrets.length, credential_values_found: found, request_rows_left: rows, marker_found: markerFound };
}

await main();
