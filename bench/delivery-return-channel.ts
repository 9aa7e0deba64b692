/**
 * Delivery latency over the return channel: each agent issues a request, opens
 * `GET /v1/credentials/wait` and polls once, at once, when the `decided` message arrives; the
 * operator looks up and approves at a random moment within 2 s (as in bench/delivery.ts). Measured
 * from the decide call's 200 to the agent's poll 200. Also recorded, to say where the time goes:
 * the decide call's own round trip, decide sent → message received (the announcement), and
 * message → poll 200. A request's `decided` can reach the agent before the decide's 200 reaches
 * the operator, so single samples of the main figure can be negative.
 */
import { api, errorTally, issue, lookup, mapLimit, percentile, sleep, type Agent } from "./client.ts";
import { round } from "./load.ts";
import { openWaitSocket, within } from "./wait-socket.ts";

const MESSAGE_TIMEOUT_MS = 30_000;

const summary = (values: number[]) => {
  const sorted = values.slice().sort((a, b) => a - b);
  return { p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)) };
};

/** `concurrency` handoffs at a time (default one per agent), agents taken in turn. */
export async function measureReturnChannelDelivery(base: string, agents: Agent[], count: number, concurrency = agents.length) {
  const samples: number[] = [];
  const decideRtt: number[] = [];
  const announce: number[] = [];
  const pollRtt: number[] = [];
  const tally = errorTally();
  const { fail } = tally;
  // The poll after `decided` finds the request decided, which answers at once: never slow_down.
  let slowDowns = 0;
  const handoff = async (i: number) => {
    const pending = await issue(base, agents[i % agents.length]!);
    const socket = openWaitSocket(base, pending.deviceCode);
    try {
      await within(socket.opened, MESSAGE_TIMEOUT_MS, "socket not opened");
      let decideSent = Number.NaN;
      let decided = Number.NaN;
      const operator = (async () => {
        await sleep(Math.random() * 2000);
        const { cookie, approvalToken } = await lookup(base, pending);
        decideSent = performance.now();
        const answer = await api(base, "POST", "/v1/approvals/decide", { approval_token: approvalToken, decision: "approve", credential_value: `rc-secret-${i}` }, { Cookie: cookie });
        decided = performance.now();
        if (answer.status !== 200) throw new Error(`decide ${answer.status} ${answer.json.error}`);
      })();
      operator.catch(() => undefined); // surfaces where it is awaited
      const message = await within(socket.message, MESSAGE_TIMEOUT_MS, "no message");
      if (message.type !== "decided" || message.status !== "approved") {
        await operator.catch(() => undefined);
        return fail(`message ${JSON.stringify(message)}`);
      }
      const response = await api(base, "POST", "/v1/credentials/poll", { device_code: pending.deviceCode });
      const delivered = performance.now();
      if (response.json.error === "slow_down") slowDowns++;
      await operator;
      if (response.status !== 200 || response.json.credential_value !== `rc-secret-${i}`) return fail(`poll ${response.status} ${response.json.error}`);
      samples.push(delivered - decided);
      decideRtt.push(decided - decideSent);
      announce.push(message.at - decideSent);
      pollRtt.push(delivered - message.at);
    } finally {
      socket.close();
    }
  };
  await mapLimit(Array.from({ length: count }, (_, i) => i), concurrency, (i) => tally.run(() => handoff(i)));
  return {
    ...summary(samples),
    count: samples.length,
    errors: tally.errors,
    error_kinds: tally.kinds,
    slow_down: slowDowns,
    negative_samples: samples.filter((s) => s < 0).length,
    /** Where the time goes (ms, p50/p99): the decide's round trip, decide sent → `decided` received, `decided` received → poll 200. */
    parts_ms: { decide_round_trip: summary(decideRtt), decide_sent_to_message: summary(announce), message_to_poll_200: summary(pollRtt) },
  };
}
