// The return channel against a real `wrangler dev`, with the runtime's own WebSocket client (Node 22):
// the subprotocols negotiate as sdk/README.md says (`waitForApproval`), the decision arrives on the socket, the poll delivers.
import { describe, expect, it } from "vitest";
import { createAccountAndAgent, type DevServer } from "./support/dev-server";
import { useDevServer } from "./support/use-dev-server";
import { operatorDecides, pollCredential, requestCredential } from "./support/approval";

function waitFor(server: DevServer, deviceCode: string) {
  const ws = new WebSocket(`${server.url.replace(/^http/, "ws")}/v1/credentials/wait`, ["keyferry.v1", `keyferry.device-code.${deviceCode}`]);
  const opened = new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve());
    ws.addEventListener("error", () => reject(new Error("the socket was refused")));
  });
  const message = new Promise<unknown>((resolve) => ws.addEventListener("message", (event) => resolve(JSON.parse(String(event.data)))));
  const closed = new Promise<number>((resolve) => ws.addEventListener("close", (event) => resolve(event.code)));
  return { ws, opened, message, closed };
}

describe("return channel against wrangler dev", () => {
  const server = useDevServer();

  it("selects keyferry.v1, announces the approval, closes 1000, and the next poll delivers at once", async () => {
    const agent = await createAccountAndAgent(server);
    const issued = await requestCredential(server, agent.apiKey, { description: "Socket", vault_key: "socket" });
    expect((await pollCredential(server, issued.json.device_code)).json.error).toBe("authorization_pending");
    const waiter = waitFor(server, issued.json.device_code);
    await waiter.opened;
    expect(waiter.ws.protocol).toBe("keyferry.v1");
    await operatorDecides(server, issued.json.user_code, agent.operatorEmail, { decision: "approve", credential_value: "sk_socket" });
    expect(await waiter.message).toEqual({ type: "decided", status: "approved" });
    // The close frame follows the message at once, but under wrangler dev the close event waits until the
    // runtime drops the connection (about 10 s here): a client acts on the message, not on the close.
    expect(await waiter.closed).toBe(1000);
    // Sooner than the 5 s interval after the previous poll, and still served.
    expect((await pollCredential(server, issued.json.device_code)).json.credential_value).toBe("sk_socket");
  });

  it("refuses a forged code before the upgrade", async () => {
    const agent = await createAccountAndAgent(server);
    const issued = await requestCredential(server, agent.apiKey, { description: "Socket", vault_key: "socket" });
    const forged = `${issued.json.device_code.slice(0, -4)}AAAA`;
    await expect(waitFor(server, forged).opened).rejects.toThrow("refused");
  });
});
