// Pending requests live in Durable Object storage, so they survive a restart of `wrangler dev`
// (same persist directory, same secrets: the device code stays verifiable).
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createAccountAndAgent } from "./support/dev-server";
import { useDevServer } from "./support/use-dev-server";
import { decide, lookup, pollCredential, pollUntilSettled, requestCredential } from "./support/approval";

describe("restarting wrangler dev", () => {
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: "1" } });

  it("keeps a pending request: it can be looked up, approved and delivered afterwards", async () => {
    const agent = await createAccountAndAgent(server);
    const secret = `restart-${randomBytes(12).toString("hex")}`;
    const issued = await requestCredential(server, agent.apiKey, { description: "Survives restarts", vault_key: "restart" });
    expect(issued.status).toBe(200);
    expect((await pollCredential(server, issued.json.device_code)).json.error).toBe("authorization_pending");

    await server.restart();

    const found = await lookup(server, { user_code: issued.json.user_code, email: agent.operatorEmail });
    expect(found.res.status).toBe(200);
    expect(found.res.json.request).toMatchObject({ description: "Survives restarts", vault_key: "restart", account_id: agent.accountId });
    const decided = await decide(server, found.cookie, { approval_token: found.res.json.approval_token, decision: "approve", credential_value: secret });
    expect(decided).toMatchObject({ status: 200, json: { status: "approved" } });

    const delivered = await pollUntilSettled(server, issued.json.device_code, issued.json.interval, 30_000);
    expect(delivered).toMatchObject({ status: 200, json: { vault_key: "restart", description: "Survives restarts", credential_value: secret } });
  });

  it("keeps an approved request and the account's agents", async () => {
    const agent = await createAccountAndAgent(server);
    const issued = await requestCredential(server, agent.apiKey, { description: "Approved before", vault_key: "approved-before" });
    const found = await lookup(server, { user_code: issued.json.user_code, email: agent.operatorEmail });
    await decide(server, found.cookie, { approval_token: found.res.json.approval_token, decision: "approve", credential_value: "kept" });

    await server.restart();

    expect(await pollCredential(server, issued.json.device_code)).toMatchObject({ status: 200, json: { credential_value: "kept" } });
    // The agent's key still works after the restart.
    expect((await requestCredential(server, agent.apiKey, { description: "Again", vault_key: "again" })).status).toBe(200);
  });
});
