// Bad input to `keyferry mcp` (installed package, official MCP client, real `wrangler dev`):
// unknown or malformed tool arguments, a vault key that does not exist, a command that is not found,
// a server that is down, a refused API key, a denied and an expired request. Each is a clear MCP tool
// error (`isError: true`), the server process keeps running, and no error carries a secret.
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../sdk/src/index";
import { operatorDecides } from "./support/approval";
import { createAccountAndAgent } from "./support/dev-server";
import { useDevServer } from "./support/use-dev-server";
import { installedPackage, type InstalledPackage } from "./support/installed-package";
import { keyferryCli, startMcp, type McpSession, type ToolResult } from "./support/mcp";

const TTL_SECONDS = 8;

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === "object" && address ? address.port : 1));
    });
  });
}

function expectToolError(result: ToolResult, pattern: RegExp) {
  expect(result.isError, result.text).toBe(true);
  expect(result.text).toMatch(pattern);
  expect(result.text).not.toMatch(/\n\s+at /); // no stack trace
}

describe("keyferry mcp: bad input is a tool error, never a crash or a leak", () => {
  let pkg: InstalledPackage;
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: "1", REQUEST_TTL_SECONDS: String(TTL_SECONDS) } });
  let env: Record<string, string>;
  let operatorEmail: string;
  const stored = `q${randomBytes(12).toString("hex")}`;
  const sessions: McpSession[] = [];
  const start = async (options: Omit<Parameters<typeof startMcp>[0], "bin">) => {
    const session = await startMcp({ bin: pkg.bin, ...options });
    sessions.push(session);
    return session;
  };

  beforeAll(async () => {
    pkg = await installedPackage();
    const ids = await createAccountAndAgent(server, { agentName: "mcp-bad-input" });
    operatorEmail = ids.operatorEmail;
    const home = mkdtempSync(join(tmpdir(), "keyferry-mcp-bad-"));
    env = { HOME: home, KEYFERRY_URL: server.url, KEYFERRY_API_KEY: ids.apiKey };
    await keyferryCli(pkg.bin, ["init"], env);
    const masterSeed = readFileSync(join(home, ".config/keyferry/seed"), "utf8").trim();
    await createClient({ baseUrl: server.url, apiKey: ids.apiKey, masterSeed }).vault.put("stored-secret", stored);
  }, 300_000);
  afterAll(async () => {
    for (const session of sessions) {
      // Still running after everything below, and answering.
      expect(session.alive()).toBe(true);
      await session.ping();
      expect(session.stderr()).not.toMatch(/\n\s+at /);
      for (const message of session.received) expect(message).not.toContain(stored);
      await session.close();
    }
  });

  it("rejects unknown, missing and malformed arguments, and the tool --allow-run did not enable", async () => {
    const session = await start({ env });
    expectToolError(await session.call("request_credential", { description: "x", vault_key: "a", extra: true }), /Unrecognized key.*extra/);
    expectToolError(await session.call("list_credentials", { bogus: 1 }), /Unrecognized key.*bogus/);
    expectToolError(await session.call("wait_for_credential", {}), /vault_key/);
    expectToolError(await session.call("request_credential", { description: "x", vault_key: "bad name!" }), /vault_key must be 1-128 characters/);
    expectToolError(await session.call("request_credential", { description: "", vault_key: "a" }), /description/);
    // The v2 SDK answers an unknown tool with a protocol error (-32602), not a tool result.
    await expect(session.call("run_with_credentials", { command: ["true"], secrets: {} })).rejects.toThrow(/-32602.*run_with_credentials not found/);
  });

  it("names a vault key that does not exist, a command that is not found, and cuts long output without leaking a secret's head", async () => {
    const session = await start({ env, args: ["--allow-run"] });
    expectToolError(await session.call("wait_for_credential", { vault_key: "never-asked" }), /no pending request for "never-asked"/);
    expectToolError(
      await session.call("run_with_credentials", { command: ["true"], secrets: { X: "does-not-exist" } }),
      /vault key "does-not-exist" does not exist/,
    );
    const notFound = await session.call("run_with_credentials", { command: ["no-such-command-keyferry"], secrets: { X: "stored-secret" } });
    expectToolError(notFound, /^command not found: no-such-command-keyferry$/);
    expectToolError(
      await session.call("run_with_credentials", { command: [process.execPath], secrets: { "1BAD": "stored-secret" } }),
      /secrets\.1BAD: Invalid key in record/,
    );

    // 64 KiB are kept: the secret starts 6 bytes before the cut, so only its head would be in the output.
    const script = "process.stdout.write('x'.repeat(65536 - 6) + process.env.X + 'y'.repeat(100000))";
    const long = await session.call("run_with_credentials", { command: [process.execPath, "-e", script], secrets: { X: "stored-secret" } });
    expect(long.isError, long.text).toBeFalsy();
    const stdout = (long.structured as { stdout: string; stdout_truncated: boolean }).stdout;
    expect((long.structured as { stdout_truncated: boolean }).stdout_truncated).toBe(true);
    expect(stdout).toBe(`${"x".repeat(65536 - 6)}[redacted:stored-secret]`);
    expect(long.text).toContain("[output cut at 65536 bytes]");
    expect(long.raw).not.toContain(stored.slice(0, 6));
  });

  it("will not start without a master seed, and says why on stderr", async () => {
    const failed = await keyferryCli(pkg.bin, ["mcp"], { ...env, KEYFERRY_SEED_FILE: join(tmpdir(), `keyferry-absent-${randomBytes(4).toString("hex")}`) }).then(
      () => undefined,
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stdout).toBe("");
    expect(failed?.stderr).toMatch(/^keyferry: no master seed at .*: run "keyferry init" first\n$/);
  });

  it("reports a server that is down and an API key that is refused, without the key", async () => {
    const down = await start({ env: { ...env, KEYFERRY_URL: `http://127.0.0.1:${await closedPort()}` } });
    expectToolError(await down.call("list_credentials", {}), /could not reach the Keyferry server/);
    expectToolError(await down.call("request_credential", { description: "x", vault_key: "a" }), /could not reach the Keyferry server/);

    const refused = await start({ env: { ...env, KEYFERRY_API_KEY: "kf_wrong_key_123" } });
    const result = await refused.call("list_credentials", {});
    expectToolError(result, /API key was refused/);
    expect(result.raw).not.toContain("kf_wrong_key_123");
  });

  it("ends a denied request and an expired one with a tool error, and a declined elicitation says what to do", async () => {
    const session = await start({ env });
    const asked = await session.call("request_credential", { description: "Denied token", vault_key: "denied-token" });
    await operatorDecides(server, (asked.structured as { user_code: string }).user_code, operatorEmail, { decision: "deny" });
    const denied = await session.call("wait_for_credential", { vault_key: "denied-token" });
    expectToolError(denied, /the request for "denied-token" ended: the operator denied the request.*\(ACCESS_DENIED\)/);
    expect(denied.structured).toEqual({ status: "failed", vault_key: "denied-token" });
    expectToolError(await session.call("wait_for_credential", { vault_key: "denied-token" }), /no pending request/);

    await session.call("request_credential", { description: "Expiring token", vault_key: "expiring-token" });
    expectToolError(
      await session.call("wait_for_credential", { vault_key: "expiring-token" }),
      /the request for "expiring-token" ended: the request expired before it was approved \(EXPIRED_TOKEN\)/,
    );

    const declining = await start({ env, onUrlElicitation: () => "decline" });
    const declined = await declining.call("request_credential", { description: "Declined token", vault_key: "declined-token" });
    expectToolError(declined, /did not open the approval page \(decline\).*wait_for_credential/);
    expect(declining.elicitations).toHaveLength(1);
  }, TTL_SECONDS * 1000 + 60_000);
});
