// The return channel survives a server restart (sdk/README.md, "credentials.waitForApproval()"): the
// SDK's socket drops when `wrangler dev` restarts, the SDK reconnects with backoff while the request
// lives, and the decision made after the restart arrives on the new socket; one poll delivers.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createClient } from "../../sdk/src/index";
import { operatorDecides } from "./support/approval";
import { createAccountAndAgent } from "./support/dev-server";
import { useDevServer } from "./support/use-dev-server";
import { traceSdk, type TraceStep } from "./support/sdk-trace";
import { sleep } from "../support/sleep";

const INTERVAL_SECONDS = 60;

describe("return channel across a wrangler dev restart", () => {
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: String(INTERVAL_SECONDS) } });

  it("the SDK reconnects after the socket drops and hears the decision on the new socket", { timeout: 240_000 }, async () => {
    const agent = await createAccountAndAgent(server, { agentName: "reconnecting" });
    const trace = traceSdk();
    const ferry = createClient({ baseUrl: server.url, apiKey: agent.apiKey, fetch: trace.fetch, webSocket: trace.webSocket });
    const req = await ferry.credentials.request({ description: "Across a restart", vaultKey: "restart-key", endToEnd: false });
    const waiting = ferry.credentials.waitForApproval(req.deviceCode, { timeout: 180_000 }).then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    await trace.opened(0);

    // The request's state is persisted; the process holding the socket is not.
    await server.restart();
    await trace.lost(0);
    const reopened = (step: TraceStep) => step.kind === "open" && step.socket > 0;
    for (const deadline = Date.now() + 90_000; !trace.steps.some(reopened); await sleep(100)) {
      if (Date.now() > deadline) throw new Error(`the SDK did not reconnect: ${JSON.stringify(trace.steps)}`);
    }
    const socket = (trace.steps.find(reopened) as { socket: number }).socket;

    const secret = `sk-restart-${randomBytes(8).toString("hex")}`;
    await operatorDecides(server, req.userCode!, agent.operatorEmail, { decision: "approve", credential_value: secret });
    const result = await waiting;
    if (!result.ok) throw result.error;
    expect(result.value.credentialValue).toBe(secret);

    // Every socket offered the same subprotocols and a DPoP proof of its own; the decision came on the reopened one.
    expect(trace.sockets.length).toBeGreaterThanOrEqual(2);
    for (const offered of trace.sockets) {
      expect(offered.protocols).toEqual(["keyferry.v1", `keyferry.device-code.${req.deviceCode}`, expect.stringMatching(/^keyferry\.dpop\./)]);
    }
    expect(new Set(trace.sockets.map((offered) => offered.protocols[2])).size).toBe(trace.sockets.length);
    const decidedAt = trace.steps.findIndex((step) => step.kind === "message");
    expect(trace.steps[decidedAt]).toEqual({ kind: "message", socket, data: { type: "decided", status: "approved" } });
    // After it, exactly one poll, which delivered; any poll before it (while the socket was down) did not.
    const after = trace.steps.slice(decidedAt + 1).filter((step) => step.kind === "poll" || step.kind === "answer");
    expect(after).toEqual([{ kind: "poll", socketOpen: expect.any(Boolean), dpop: true }, { kind: "answer", status: 200 }]);
    const before = trace.steps.slice(0, decidedAt).filter((step) => step.kind === "answer");
    for (const answer of before) expect(answer).not.toMatchObject({ status: 200 });
  });
});
