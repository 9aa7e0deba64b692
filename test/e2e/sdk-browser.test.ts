// The SDK in front of a real browser: the SDK asks (end-to-end by default), the operator approves on the real
// page in Chromium, and the SDK receives the value. The page must show the fingerprint the SDK
// printed, and none of the page's own requests may carry the plaintext.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createClient } from "../../sdk/src/index";
import { browserAvailable, createAccountAndAgent } from "./support/dev-server";
import { useBrowser } from "./support/use-browser";
import { useDevServer } from "./support/use-dev-server";

const eventually = <T>(read: () => T | Promise<T>) => expect.poll(read, { timeout: 15_000, interval: 100 });

describe.skipIf(!browserAvailable())("SDK request approved in a real browser", () => {
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: "1" } });
  const browser = useBrowser();

  it("shows the SDK's fingerprint, keeps the plaintext in the browser, and hands the value to the SDK", async () => {
    const ids = await createAccountAndAgent(server, { agentName: "sdk-agent" });
    const ferry = createClient({ baseUrl: server.url, apiKey: ids.apiKey, masterSeed: randomBytes(32) });
    const req = await ferry.credentials.request({ description: "OpenAI API key", vaultKey: "openai-api-key" });
    expect(req.message).toContain(req.keyFingerprint);
    const waiting = ferry.credentials.waitForApproval(req.deviceCode, { timeout: 60_000 });

    const context = await browser.newContext();
    const page = await context.newPage();
    const bodies: string[] = [];
    page.on("request", (request) => bodies.push(`${request.url()} ${request.postData() ?? ""}`));
    expect(req.verificationUriComplete).toBeTruthy();
    await page.goto(req.verificationUriComplete!);
    await page.getByLabel("Email").fill(ids.operatorEmail);
    await page.getByRole("button", { name: "Continue" }).click();
    await eventually(() => page.locator("#fingerprint").textContent()).toBe(req.keyFingerprint);

    const secret = `sk-proj-${randomBytes(16).toString("hex")}`;
    await page.getByLabel("Credential").fill(secret);
    await page.getByRole("button", { name: "Approve" }).click();
    await eventually(() => page.getByRole("heading", { name: "Approved" }).isVisible()).toBe(true);

    const { vaultKey, credentialValue } = await waiting;
    expect(vaultKey).toBe("openai-api-key");
    expect(credentialValue).toBe(secret);
    expect(bodies.some((b) => b.includes("/v1/approvals/decide"))).toBe(true);
    for (const body of bodies) {
      expect(body).not.toContain(secret);
      expect(body).not.toContain(Buffer.from(secret).toString("base64url"));
    }
    await context.close();
  });
});
