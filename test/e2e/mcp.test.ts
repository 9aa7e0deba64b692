// `keyferry mcp` from the installed package, driven by the official MCP client over stdio,
// against a real `wrangler dev`, with the operator approving in a real Chromium.
// - A client that declares URL elicitation gets `elicitation/create` (mode "url") with the approval
//   URL and an elicitationId; the tool waits (progress with time left), stores the credential and
//   reports success without it; `notifications/elicitation/complete` follows.
// - A client without elicitation gets the URL, code and fingerprint at once and finishes with
//   wait_for_credential (bounded, resumable, cancellable).
// - list_credentials lists the keys; run_with_credentials hands the value to a child process and the
//   output comes back redacted. No message from the server ever carries the value.
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Progress } from "@modelcontextprotocol/sdk/types.js";
import { browserAvailable, createAccountAndAgent } from "./support/dev-server";
import { useBrowser } from "./support/use-browser";
import { useDevServer } from "./support/use-dev-server";
import { installedPackage, type InstalledPackage } from "./support/installed-package";
import { approveInFreshContext, approveOnPage, expectNoSecret, FINGERPRINT, keyferryCli, startMcp, waitUntilSettled, type McpSession } from "./support/mcp";

describe.skipIf(!browserAvailable())("keyferry mcp from the installed package", () => {
  let pkg: InstalledPackage;
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: "1", REQUEST_TTL_SECONDS: "180" } });
  const browser = useBrowser();
  let env: Record<string, string>;
  let operatorEmail: string;
  const sessions: McpSession[] = [];

  beforeAll(async () => {
    pkg = await installedPackage();
    const ids = await createAccountAndAgent(server, { agentName: "mcp-agent" });
    operatorEmail = ids.operatorEmail;
    env = { HOME: mkdtempSync(join(tmpdir(), "keyferry-mcp-")), KEYFERRY_URL: server.url, KEYFERRY_API_KEY: ids.apiKey };
    await keyferryCli(pkg.bin, ["init"], env);
  }, 300_000);
  afterAll(async () => {
    for (const session of sessions) await session.close();
  });

  it("with URL elicitation: the approval URL goes to the client, Chromium approves, the tool stores the value and never shows it", async () => {
    const secret = `tok/${randomBytes(12).toString("hex")}+=&?`;
    const context = await browser.newContext();
    const page = await context.newPage();
    let approval: Promise<void> | undefined;
    const session = await startMcp({
      bin: pkg.bin,
      env,
      args: ["--allow-run"],
      onUrlElicitation: (params) => {
        // A real client asks the user, then opens the URL: here the operator approves in Chromium.
        approval = approveOnPage(page, params.url, operatorEmail, params.message.match(FINGERPRINT)?.[0] ?? null, secret);
        return "accept";
      },
    });
    sessions.push(session);

    const tools = await session.listTools();
    expect(tools).toEqual(["list_credentials", "request_credential", "run_with_credentials", "wait_for_credential"]);

    const progress: Progress[] = [];
    const result = await session.call(
      "request_credential",
      { description: "Deploy token", vault_key: "deploy-token" },
      { onprogress: (p) => progress.push(p) },
    );
    await approval;
    expect(result.isError, result.text).toBeFalsy();
    expect(result.text).toContain('stored in the vault as "deploy-token"');
    expect(result.structured).toEqual({ status: "stored", vault_key: "deploy-token" });

    expect(session.elicitations).toHaveLength(1);
    const [elicitation] = session.elicitations;
    expect(elicitation!.mode).toBe("url");
    expect(elicitation!.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/approve/);
    expect(elicitation!.message).toMatch(FINGERPRINT);
    expect(elicitation!.elicitationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(session.completed).toEqual([elicitation!.elicitationId]);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress[0]!.message).toMatch(/Waiting for the operator to approve "deploy-token" .* left$/);
    expect(progress[0]!.total).toBeGreaterThan(0);

    const listed = await session.call("list_credentials", {});
    expect(listed.isError).toBeFalsy();
    expect(listed.structured?.items).toEqual([{ vault_key: "deploy-token", updated_at: expect.any(String) }]);

    const script = [
      "const v = process.env.TOKEN;",
      "console.log('plain ' + v);",
      "console.log('b64 ' + Buffer.from(v).toString('base64'));",
      "console.log('b64url ' + Buffer.from(v).toString('base64url'));",
      "console.log('url ' + encodeURIComponent(v));",
      "console.log('api ' + (process.env.KEYFERRY_API_KEY ?? 'none'));",
      "console.error('err ' + v); process.exit(3);",
    ].join(" ");
    const ran = await session.call("run_with_credentials", { command: [process.execPath, "-e", script], secrets: { TOKEN: "deploy-token" } });
    expect(ran.isError, ran.text).toBeFalsy();
    expect(ran.structured).toMatchObject({
      exit_code: 3,
      timed_out: false,
      stdout:
        "plain [redacted:deploy-token]\nb64 [redacted:deploy-token]\nb64url [redacted:deploy-token]\nurl [redacted:deploy-token]\napi none\n",
      stderr: "err [redacted:deploy-token]\n",
    });
    expect(ran.text).toMatch(/^exit code 3\n/);

    expectNoSecret(session, [secret]);
    // The CLI from the same package reads what the MCP server stored: the value is really there.
    expect((await keyferryCli(pkg.bin, ["get", "deploy-token"], env)).stdout).toBe(secret);
    await context.close();
  });

  it("without elicitation: request_credential answers at once, wait_for_credential waits in bounded, cancellable slices and stores it", async () => {
    const secret = `sk-${randomBytes(16).toString("hex")}`;
    const session = await startMcp({ bin: pkg.bin, env: { ...env, KEYFERRY_MCP_WAIT_SECONDS: "3" } });
    sessions.push(session);
    const tools = await session.listTools();
    expect(tools).toEqual(["list_credentials", "request_credential", "wait_for_credential"]);

    const asked = await session.call("request_credential", { description: "OpenAI API key", vault_key: "openai-api-key" }, { onprogress: () => undefined });
    expect(asked.isError, asked.text).toBeFalsy();
    expect(asked.structured).toMatchObject({ status: "pending", vault_key: "openai-api-key", user_code: expect.stringMatching(/^[A-Z]{4}-[A-Z]{4}$/) });
    const { url, key_fingerprint: fingerprint, user_code: userCode } = asked.structured as { url: string; key_fingerprint: string; user_code: string };
    expect(fingerprint).toMatch(FINGERPRINT);
    expect(asked.text).toContain(url);
    expect(asked.text).toContain(userCode);
    expect(asked.text).toContain(fingerprint);
    expect(asked.text).toContain("wait_for_credential");
    // The progress the server sent before its answer. (Read from the wire: the v1 client runs a
    // notification's handler a microtask later, so when both arrive in one read under load, the answer
    // has already dropped the progress handler and onprogress never hears it.)
    const told = session.received
      .map((message) => JSON.parse(message) as { method?: string; params?: Progress })
      .filter((message) => message.method === "notifications/progress")
      .map((message) => message.params!.message);
    expect(told).toEqual([expect.stringContaining(fingerprint)]);
    expect(told[0]).toContain(url);

    // Bounded: nobody approved yet, so the slice ends with "still pending" (not an error), with progress.
    const progress: Progress[] = [];
    const pending = await session.call("wait_for_credential", { vault_key: "openai-api-key" }, { onprogress: (p) => progress.push(p) });
    expect(pending.isError, pending.text).toBeFalsy();
    expect(pending.structured).toMatchObject({ status: "pending", vault_key: "openai-api-key" });
    expect(pending.text).toMatch(/Still waiting for the operator \(\d+ min \d+ s left\)/);
    expect(progress[0]?.message).toMatch(/left$/);

    // Cancellable: the client's cancellation aborts the wait; the request stays open.
    const controller = new AbortController();
    const cancelled = session.call("wait_for_credential", { vault_key: "openai-api-key" }, { signal: controller.signal, onprogress: () => controller.abort() });
    await expect(cancelled).rejects.toThrow(/abort/i);
    expect(session.alive()).toBe(true);

    await approveInFreshContext(browser, url, operatorEmail, fingerprint, secret);

    // Resumable: call again until it reports the result (each call is one bounded slice).
    const stored = await waitUntilSettled(session, "openai-api-key");
    expect(stored.isError, stored.text).toBeFalsy();
    expect(stored.structured).toEqual({ status: "stored", vault_key: "openai-api-key" });

    const again = await session.call("wait_for_credential", { vault_key: "openai-api-key" });
    expect(again.isError).toBe(true);
    expect(again.text).toMatch(/no pending request for "openai-api-key"/);

    const listed = await session.call("list_credentials", {});
    expect((listed.structured?.items as Array<{ vault_key: string }>).map((item) => item.vault_key).sort()).toEqual(["deploy-token", "openai-api-key"]);
    expectNoSecret(session, [secret]);
    expect((await keyferryCli(pkg.bin, ["get", "openai-api-key"], env)).stdout).toBe(secret);
    expect((await keyferryCli(pkg.bin, ["list"], env)).stdout).toMatch(/^deploy-token\t\S+\nopenai-api-key\t\S+\n$/);
  });
});
