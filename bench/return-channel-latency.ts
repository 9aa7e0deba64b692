/**
 * `npm run bench:return-channel`: the return channel's delivery latency alone, on a fresh runtime,
 * with one agent at a time (nothing else queued in the worker: the path's own cost) and with 32 at
 * a time (the bench's load: each agent's issue, look-up, decide, upgrade and poll queue in the same
 * worker). Says whether a slow figure is the announcement, the poll or the load around them.
 */
import { createAgents } from "./client.ts";
import { measureReturnChannelDelivery } from "./delivery-return-channel.ts";
import { startRuntime } from "./runtime.ts";

const runtime = await startRuntime({ POLL_INTERVAL_SECONDS: "1" });
try {
  // Each set of agents used once: an agent may open 10 requests a minute (core/limits.ts).
  for (const [concurrency, count] of [[1, 40], [32, 150], [1, 40]] as const) {
    const agents = await createAgents(runtime.urls.keyferry, runtime.adminToken, 40, `rc-latency-${concurrency}-${count}`);
    const result = await measureReturnChannelDelivery(runtime.urls.keyferry, agents, count, concurrency);
    console.log(`${String(concurrency).padStart(2)} agent(s) at a time: p50 ${result.p50} ms, p99 ${result.p99} ms over ${result.count} (${result.errors} errors); parts ${JSON.stringify(result.parts_ms)}`);
  }
} finally {
  await runtime.dispose();
}
