/**
 * Delivery latency: from the operator's approval (the decide call's 200) to the agent holding the
 * credential, with a well-behaved poller that waits `interval` between polls and adds 5 s on
 * slow_down (RFC 8628 §3.5), as the SDK does. Operators approve at a random moment.
 */
import { api, approve, errorTally, issue, mapLimit, percentile, sleep, type Agent } from "./client.ts";
import { round } from "./load.ts";

export async function measureDelivery(base: string, agents: Agent[], count: number, interval: number) {
  const samples: number[] = [];
  const tally = errorTally();
  const { fail } = tally;
  let slowDowns = 0;
  const handoff = async (i: number) => {
    const agent = agents[i % agents.length]!;
    const pending = await issue(base, agent);
    let approvedAt = Number.NaN;
    const operator = (async () => {
      await sleep(Math.random() * 2000);
      await approve(base, pending, `delivery-secret-${i}`);
      approvedAt = performance.now();
    })();
    operator.catch(() => undefined); // its failure surfaces where it is awaited, never as an unhandled rejection
    let wait = interval;
    for (;;) {
      await sleep(wait * 1000);
      const response = await api(base, "POST", "/v1/credentials/poll", { device_code: pending.deviceCode });
      if (response.status === 200) {
        await operator;
        samples.push(performance.now() - approvedAt);
        return;
      }
      if (response.json.error === "slow_down") {
        slowDowns++;
        wait += 5;
      }
      else if (response.json.error !== "authorization_pending") {
        fail(`poll ${response.status} ${response.json.error}`);
        await operator.catch(() => undefined);
        return;
      }
    }
  };
  await mapLimit(Array.from({ length: count }, (_, i) => i), agents.length, (i) => tally.run(() => handoff(i)));
  samples.sort((a, b) => a - b);
  return { p50: round(percentile(samples, 50)), p99: round(percentile(samples, 99)), count: samples.length, errors: tally.errors, error_kinds: tally.kinds, slow_down: slowDowns, interval_s: interval };
}
