// The outbox against a real `wrangler dev` (README, "Notifications that survive outages"): a receiver that
// answers 503 for its first 25 s while the server is restarted on the same persist directory still
// gets `credential.requested` (signed, one id across its tries), then `.approved` and `.delivered`;
// a Slack-format webhook gets `{"text"}` with the approval link.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createAccountAndAgent } from "./support/dev-server";
import { useNotificationServer } from "./support/notification-server";
import { decide, lookup, pollUntilSettled, requestCredential } from "./support/approval";
import { signatureIsValid, type Received } from "./support/receiver";

const LINK = /(https?:\/\/[^\s]+\/approve#link=([\w.-]+))/;
const OUTAGE_MS = 25_000;

describe("durable notifications against wrangler dev", () => {
  const dev = useNotificationServer();
  const { receiver, setWebhook } = dev;

  const typeOf = (hit: Received) => (JSON.parse(hit.body) as { type: string }).type;

  it("a receiver down for 25 s across a server restart still gets the request, then the approval and the delivery", { timeout: 300_000 }, async () => {
    const outageStarted = Date.now();
    const hooks = await receiver((hit) => (hit.at - outageStarted < OUTAGE_MS ? 503 : 204));
    const agent = await createAccountAndAgent(dev.server);
    const secret = await setWebhook(agent.accountId, { webhook_url: `${hooks.origin}/outage` });
    const vaultKey = `outage-${randomBytes(4).toString("hex")}`;
    const asked = await requestCredential(dev.server, agent.apiKey, { description: "Survives an outage", vault_key: vaultKey });
    expect(asked.status, asked.text).toBe(200);

    // The first attempt fails; the server goes down and comes back on the same persist directory.
    await hooks.waitFor(1, 30_000);
    await dev.server.restart();

    // Retried with backoff until the receiver is back: one id, one body, a fresh valid signature.
    const [accepted] = await hooks.waitFor(1, 240_000, (hit) => hit.at - outageStarted >= OUTAGE_MS);
    const tries = hooks.received.filter((hit) => hit.at <= accepted!.at);
    expect(tries.length).toBeGreaterThanOrEqual(2);
    expect(new Set(tries.map((hit) => hit.headers["keyferry-event-id"])).size).toBe(1);
    expect(new Set(tries.map((hit) => hit.body)).size).toBe(1);
    expect(typeOf(accepted!)).toBe("credential.requested");
    expect(JSON.parse(accepted!.body).id).toBe(accepted!.headers["keyferry-event-id"]);
    expect(signatureIsValid(secret, accepted!.body, accepted!.headers["keyferry-signature"])).toBe(true);

    // The handoff, from the event's link (wrangler dev's .eml files of before the restart are gone).
    const link = LINK.exec(JSON.parse(accepted!.body).approval_url as string);
    expect(link).not.toBeNull();
    const found = await lookup(dev.server, { link_token: link![2]! });
    expect(found.res.status, found.res.text).toBe(200);
    const decided = await decide(dev.server, found.cookie, { approval_token: found.res.json.approval_token, decision: "approve", credential_value: "outage-value" });
    expect(decided.status, decided.text).toBe(200);
    const delivered = await pollUntilSettled(dev.server, asked.json.device_code, 1, 30_000);
    expect(delivered.json.credential_value).toBe("outage-value");

    const later = await hooks.waitFor(2, 60_000, (hit) => hit.at > accepted!.at);
    expect(later.map(typeOf)).toEqual(["credential.approved", "credential.delivered"]);
    for (const hit of later) {
      expect(signatureIsValid(secret, hit.body, hit.headers["keyferry-signature"])).toBe(true);
      expect(hit.body).not.toContain("outage-value");
    }
  });

  it('a "slack"-format webhook receives {"text"} with the agent, the vault key and the approval link', { timeout: 120_000 }, async () => {
    const chat = await receiver();
    const agent = await createAccountAndAgent(dev.server, { agentName: "deploy-bot" });
    const secret = await setWebhook(agent.accountId, { webhook_url: `${chat.origin}/services/T000/B000/XXXX`, webhook_format: "slack" });
    const vaultKey = `slack-${randomBytes(4).toString("hex")}`;
    const asked = await requestCredential(dev.server, agent.apiKey, { description: "Deploy key", vault_key: vaultKey, hint: "push" });
    expect(asked.status, asked.text).toBe(200);

    const [message] = await chat.waitFor(1, 30_000);
    const body = JSON.parse(message!.body) as { text: string };
    expect(Object.keys(body)).toEqual(["text"]);
    expect(body.text).toContain(`\`deploy-bot\` asks for \`${vaultKey}\`: ${dev.server.url}/approve#link=`);
    expect(body.text).toContain("Deploy key");
    expect(body.text).toContain(agent.accountId);
    expect(body.text).toMatch(/about (9|10) min left/);
    expect(signatureIsValid(secret, message!.body, message!.headers["keyferry-signature"])).toBe(true);

    // The link in the chat message opens the request.
    const token = LINK.exec(body.text)![2]!;
    const found = await lookup(dev.server, { link_token: token });
    expect(found.res.status, found.res.text).toBe(200);
    expect(found.res.json.request.vault_key).toBe(vaultKey);
  });
});
