/**
 * What one handoff costs at Cloudflare's list prices (bench/README.md, "Cost per handoff"): the
 * metered worker (bench/workers/metered.ts) counts Durable Object requests, rows written and read
 * and Worker requests over whole handoffs, from issuance to the request object's expiry alarm;
 * CPU is the runtime's own workerd process time (worker and objects together) over the same span.
 * Four variants: over the return channel or polling (5 s interval, the operator deciding after
 * 60 s), each with the operator's email, then with a webhook added. Each variant has a runtime of
 * its own, one after the other, with a request lifetime just long enough that its expiry alarms
 * fall in the span, and past the account's notification lease; each waits out its set-up's
 * notification lease first (about 8 minutes in all).
 */
import { readFile } from "node:fs/promises";
import { usdPerMillion, type HandoffMeters } from "./cost-meter.ts";
import { api, createAgents, issue, lookup, mapLimit, setUpAlarmsRun, sleep, type Agent, type Pending } from "./client.ts";
import { round } from "./load.ts";
import { startRuntime, type Runtime } from "./runtime.ts";
import { openWaitSocket, within } from "./wait-socket.ts";
import { startWebhookReceiver } from "./webhook-receiver.ts";
import { LEASE_MS } from "../durable-objects/account/notify/outbox.ts";

const POLL_INTERVAL_S = 5;
const POLL_WAIT_MS = 60_000;

type Variant = { channel: "return_channel" | "polling"; webhook: boolean };

/** Clock ticks of CPU (user + system) the runtime's workerd processes used so far. */
async function cpuMs(runtime: Runtime): Promise<number> {
  let ticks = 0;
  for (const pid of runtime.workerdPids()) {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

async function returnChannelHandoff(base: string, agent: Agent, i: number): Promise<void> {
  const pending = await issue(base, agent);
  const socket = openWaitSocket(base, pending.deviceCode);
  try {
    await within(socket.opened, 30_000, "socket not opened");
    const { cookie, approvalToken } = await lookup(base, pending);
    const decided = await api(base, "POST", "/v1/approvals/decide", { approval_token: approvalToken, decision: "approve", credential_value: `cost-${i}` }, { Cookie: cookie });
    if (decided.status !== 200) throw new Error(`decide ${decided.status}`);
    const message = await within(socket.message, 30_000, "no message");
    if (message.type !== "decided") throw new Error(`message ${JSON.stringify(message)}`);
    const delivered = await api(base, "POST", "/v1/credentials/poll", { device_code: pending.deviceCode });
    if (delivered.status !== 200) throw new Error(`poll ${delivered.status}`);
  } finally {
    socket.close();
  }
}

/** An agent that polls at its interval, never early, while the operator decides after POLL_WAIT_MS. */
async function pollingHandoff(base: string, agent: Agent, i: number): Promise<number> {
  const pending: Pending = await issue(base, agent);
  const operator = sleep(POLL_WAIT_MS).then(async () => {
    const { cookie, approvalToken } = await lookup(base, pending);
    await api(base, "POST", "/v1/approvals/decide", { approval_token: approvalToken, decision: "approve", credential_value: `cost-${i}` }, { Cookie: cookie });
  });
  let interval = POLL_INTERVAL_S;
  let slowDowns = 0;
  for (;;) {
    await sleep(interval * 1000);
    const answer = await api(base, "POST", "/v1/credentials/poll", { device_code: pending.deviceCode });
    if (answer.status === 200) break;
    if (answer.json.error === "slow_down") {
      slowDowns++;
      interval += 5;
    } else if (answer.json.error !== "authorization_pending") throw new Error(`poll ${answer.status} ${String(answer.json.error)}`);
  }
  await operator;
  return slowDowns;
}

export async function measureVariant(variant: Variant, handoffs: number) {
  const ttlSeconds = variant.channel === "polling" ? 75 : 10;
  const receiver = variant.webhook ? await startWebhookReceiver(0) : null;
  const runtime = await startRuntime({ REQUEST_TTL_SECONDS: String(ttlSeconds), POLL_INTERVAL_SECONDS: String(POLL_INTERVAL_S), ALLOW_HTTP_WEBHOOKS: "true" }, { metered: true });
  try {
    const base = runtime.urls.keyferry;
    const agents = await createAgents(base, runtime.adminToken, handoffs, `cost-${variant.channel}`);
    if (receiver) {
      for (const agent of agents) {
        const patched = await api(base, "PATCH", `/v1/admin/accounts/${agent.accountId}`, { webhook_url: `${receiver.origin}/hook` }, { Authorization: `Bearer ${runtime.adminToken}` });
        if (patched.status !== 200) throw new Error(`webhook ${patched.status}`);
      }
    }
    await setUpAlarmsRun();
    const cpuBefore = await cpuMs(runtime);
    await fetch(`${base}/__bench/meters`, { method: "POST" });
    const started = Date.now();
    const slowDowns = await mapLimit(agents, handoffs, (agent, i) =>
      variant.channel === "polling" ? pollingHandoff(base, agent, i) : returnChannelHandoff(base, agent, i).then(() => 0),
    );
    // Past every request's expiry, so that its alarm (the tombstone's erasure) is counted too, and past
    // the account's notification lease, whose alarm is left armed and runs once (notify/owed.ts).
    await sleep(Math.max(0, started + Math.max(ttlSeconds * 1000, LEASE_MS) + 3000 - Date.now()));
    const counted = (await (await fetch(`${base}/__bench/meters`)).json()) as { doRequests: number; wsMessages: number; rowsWritten: number; rowsRead: number; workerRequests: number };
    const cpu = (await cpuMs(runtime)) - cpuBefore;
    const per = (n: number) => round(n / handoffs, 2);
    const meters: HandoffMeters = {
      worker_requests: per(counted.workerRequests),
      worker_cpu_ms: per(cpu),
      do_requests: per(counted.doRequests),
      ws_messages: per(counted.wsMessages),
      rows_written: per(counted.rowsWritten),
      rows_read: per(counted.rowsRead),
    };
    return { ...meters, usd_per_million: usdPerMillion(meters), handoffs, slow_down: slowDowns.reduce((a, b) => a + b, 0), ...(receiver ? { webhook_events: receiver.events.size } : {}) };
  } finally {
    await runtime.dispose();
    await receiver?.close();
  }
}

/** The four variants (a polling one waits out its minute). */
export async function measureCostPerHandoff(log: (line: string) => void, handoffs = 10) {
  const returnChannel = await measureVariant({ channel: "return_channel", webhook: false }, handoffs);
  log(`cost: return channel ${JSON.stringify(returnChannel)}`);
  const returnChannelWebhook = await measureVariant({ channel: "return_channel", webhook: true }, handoffs);
  log(`cost: return channel + webhook ${JSON.stringify(returnChannelWebhook)}`);
  // One runtime at a time: its CPU is read from its own workerd processes (bench/runtime.ts).
  const polling = await measureVariant({ channel: "polling", webhook: false }, handoffs);
  const pollingWebhook = await measureVariant({ channel: "polling", webhook: true }, handoffs);
  log(`cost: polling ${JSON.stringify(polling)}; + webhook ${JSON.stringify(pollingWebhook)}`);
  return {
    note: "per handoff, issuance to expiry; CPU is workerd's process time (worker and objects); usd_per_million at list prices beyond the included amounts (bench/README.md)",
    return_channel: returnChannel,
    return_channel_with_webhook: returnChannelWebhook,
    polling_5s_60s: polling,
    polling_5s_60s_with_webhook: pollingWebhook,
  };
}
