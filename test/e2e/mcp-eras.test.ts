// Issue 22 (and issue 20 rows 7-8): one `keyferry mcp` process serves both MCP eras. The official v2
// client pinned to 2026-07-28 (no initialize: server/discover) drives the installed package over
// stdio against a real `wrangler dev`, the operator approving in a real Chromium:
// - declaring URL elicitation, request_credential answers `input_required` (a URL elicitation and a
//   requestState); the client shows the URL, retries, and the retry stores the credential;
// - without it, the text fallback and wait_for_credential;
// - a tampered, forged, re-bound and replayed requestState is refused with a tool error, and the
//   server keeps answering;
// - `--elicitation url` and `none` override what the client declared (2025-11-25 client);
// - run_with_credentials cannot read the API key from its parent's environment or arguments, and the
//   API key, the seed and every vault value (not only the one asked for) come back redacted in raw,
//   base64, base64url, URL-encoded and hex forms.
// Every byte the server sent (messages and stderr) is scanned for each form of each secret.
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../sdk/src/index";
import { browserAvailable, createAccountAndAgent, launchBrowser, startDevServer, type DevServer } from "./support/dev-server";
import { installedPackage, type InstalledPackage } from "./support/installed-package";
import { approveInFreshContext, approveOnPage, expectNoSecret, FINGERPRINT, keyferryCli, startMcp, waitUntilSettled, type McpOptions, type McpSession } from "./support/mcp";

describe.skipIf(!browserAvailable())("keyferry mcp: both protocol eras from one process", () => {
  let pkg: InstalledPackage;
  let server: DevServer;
  let browser: Browser;
  let env: Record<string, string>;
  let operatorEmail: string;
  let apiKey: string;
  let seedText: string;
  /** A vault item no test asks run_with_credentials for. */
  const bystander = `bystander-${randomBytes(12).toString("hex")}`;
  const secrets: Array<string | Uint8Array> = [bystander];
  const sessions: McpSession[] = [];
  const start = async (options: Omit<McpOptions, "bin" | "env">) => {
    const session = await startMcp({ bin: pkg.bin, env, ...options });
    sessions.push(session);
    return session;
  };

  beforeAll(async () => {
    pkg = await installedPackage();
    server = await startDevServer({ vars: { POLL_INTERVAL_SECONDS: "1", REQUEST_TTL_SECONDS: "180" } });
    const ids = await createAccountAndAgent(server, { agentName: "mcp-eras" });
    operatorEmail = ids.operatorEmail;
    apiKey = ids.apiKey;
    const home = mkdtempSync(join(tmpdir(), "keyferry-mcp-eras-"));
    env = { HOME: home, KEYFERRY_URL: server.url, KEYFERRY_API_KEY: apiKey, KEYFERRY_MCP_WAIT_SECONDS: "3" };
    await keyferryCli(pkg.bin, ["init"], env);
    seedText = readFileSync(join(home, ".config/keyferry/seed"), "utf8").trim();
    secrets.push(apiKey, seedText, Buffer.from(seedText, "base64url"));
    await createClient({ baseUrl: server.url, apiKey, masterSeed: seedText }).vault.put("bystander", bystander);
    browser = await launchBrowser();
  }, 300_000);
  afterAll(async () => {
    for (const session of sessions) {
      expect(session.alive()).toBe(true);
      await session.ping();
      expectNoSecret(session, secrets); // every message the server sent and everything it wrote to stderr
      await session.close();
    }
    await browser?.close();
    await server?.stop();
  });

  it("2026-07-28 with URL elicitation: input_required, Chromium approves, the retry stores; a run redacts every secret", async () => {
    const secret = `tok/${randomBytes(12).toString("hex")}+=&?`;
    secrets.push(secret);
    const page = await (await browser.newContext()).newPage();
    let approval: Promise<void> | undefined;
    const session = await start({
      era: "2026-07-28",
      args: ["--allow-run"],
      onUrlElicitation: (params) => {
        approval = approveOnPage(page, params.url, operatorEmail, params.message.match(FINGERPRINT)?.[0] ?? null, secret);
        return "accept";
      },
    });
    expect(await session.listTools()).toEqual(["list_credentials", "request_credential", "run_with_credentials", "wait_for_credential"]);
    // 2026-07-28: no initialize; the same process answered server/discover first.
    expect(session.received.some((message) => message.includes('"protocolVersion"'))).toBe(false);
    expect(session.received[0]).toMatch(/"supportedVersions":\[[^\]]*"2026-07-28"/);

    const result = await session.call("request_credential", { description: "Deploy token", vault_key: "deploy-token" });
    await approval;
    expect(result.isError, result.text).toBeFalsy();
    expect(result.structured).toEqual({ status: "stored", vault_key: "deploy-token" });
    expect(session.elicitations).toHaveLength(1);
    expect(session.elicitations[0]!.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/approve/);
    const asked = session.received.find((message) => message.includes('"input_required"'));
    expect(asked).toMatch(/"requestState":"v1\.[\w-]+\.[\w-]+"/);
    expect(session.completed).toEqual([]); // 2026-07-28 has no notifications/elicitation/complete

    // The command tries every way to leak: this server's environment and arguments, the seed file,
    // a vault item it was not given, and its own secret in each encoding.
    const bystanderFile = join(env.HOME!, "bystander.txt");
    writeFileSync(bystanderFile, bystander);
    const script = [
      "const fs = require('fs'); const v = process.env.TOKEN; const b = Buffer.from(v);",
      "const parent = (name) => fs.readFileSync(`/proc/${process.ppid}/${name}`, 'latin1');",
      "console.log('environ ' + (parent('environ').includes(process.argv[1]) ? 'LEAK' : 'clean'));",
      "console.log('cmdline ' + (parent('cmdline').includes(process.argv[1]) ? 'LEAK' : 'clean'));",
      "console.log('apikey ' + process.argv[1]);",
      "console.log('seed ' + fs.readFileSync(process.argv[2], 'utf8').trim());",
      "console.log('seedhex ' + Buffer.from(fs.readFileSync(process.argv[2], 'utf8').trim(), 'base64url').toString('hex'));",
      "console.log('other ' + fs.readFileSync(process.argv[3], 'utf8'));",
      "console.log([v, b.toString('base64'), b.toString('base64url'), encodeURIComponent(v), b.toString('hex'), b.toString('hex').toUpperCase()].join(' '));",
    ].join("\n");
    const seedFile = join(env.HOME!, ".config/keyferry/seed");
    // The API key goes in as an argument only so the script can look for it; the output must not carry it.
    const ran = await session.call("run_with_credentials", {
      command: [process.execPath, "-e", script, apiKey, seedFile, bystanderFile],
      secrets: { TOKEN: "deploy-token" },
    });
    expect(ran.isError, ran.text).toBeFalsy();
    expect(ran.structured?.stdout).toBe(
      [
        "environ clean",
        "cmdline clean",
        "apikey [redacted:api-key]",
        "seed [redacted:master-seed]",
        "seedhex [redacted:master-seed]",
        "other [redacted:bystander]",
        Array(6).fill("[redacted:deploy-token]").join(" "),
        "",
      ].join("\n"),
    );
    expect((await keyferryCli(pkg.bin, ["get", "deploy-token"], env)).stdout).toBe(secret);
  });

  it("2026-07-28 without URL elicitation: the URL, code and fingerprint at once, then wait_for_credential stores it", async () => {
    const secret = `sk-${randomBytes(16).toString("hex")}`;
    secrets.push(secret);
    const session = await start({ era: "2026-07-28" });
    const asked = await session.call("request_credential", { description: "OpenAI API key", vault_key: "openai-api-key" });
    expect(asked.isError, asked.text).toBeFalsy();
    expect(asked.inputRequired).toBeUndefined();
    const { url, key_fingerprint: fingerprint } = asked.structured as { url: string; key_fingerprint: string };
    expect(asked.text).toContain("wait_for_credential");
    expect(session.received.some((message) => message.includes("input_required"))).toBe(false);

    await approveInFreshContext(browser, url, operatorEmail, fingerprint, secret);
    const stored = await waitUntilSettled(session, "openai-api-key");
    expect(stored.structured).toEqual({ status: "stored", vault_key: "openai-api-key" });
    expect((await keyferryCli(pkg.bin, ["get", "openai-api-key"], env)).stdout).toBe(secret);
  });

  it("2026-07-28: a tampered, forged, re-bound or replayed requestState is refused with a tool error; the server keeps answering", async () => {
    const secret = `gh-${randomBytes(16).toString("hex")}`;
    secrets.push(secret);
    const session = await start({ era: "2026-07-28", onUrlElicitation: () => "accept" });
    const args = { description: "GitHub token", vault_key: "github-token" };
    const first = await session.call("request_credential", args, { manual: true });
    const { requestState, inputRequests } = first.inputRequired ?? {};
    expect(requestState).toMatch(/^v1\.[\w-]+\.[\w-]+$/);
    const elicitation = inputRequests?.approve;
    expect(elicitation?.method).toBe("elicitation/create");
    expect(elicitation?.params).toMatchObject({ mode: "url", url: expect.stringMatching(/\/approve/) });
    const accept = { approve: { action: "accept" } };
    const refused = /^refused: the requestState is not one this server issued for this call, or it expired or was already used/;

    const [body, mac] = requestState!.slice(3).split(".") as [string, string];
    const flip = (text: string, at: number) => text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1);
    const payload = JSON.parse(Buffer.from(body, "base64url").toString()) as { p: { v: string } };
    const edited = Buffer.from(JSON.stringify({ ...payload, p: { ...payload.p, v: "other-key" } })).toString("base64url");
    for (const [what, state, callArgs] of [
      ["a flipped MAC", `v1.${body}.${flip(mac, 5)}`, args],
      ["an edited payload, old MAC", `v1.${edited}.${mac}`, { ...args, vault_key: "other-key" }],
      ["a forged state", `v1.${Buffer.from('{"p":{},"exp":9999999999}').toString("base64url")}.${randomBytes(32).toString("base64url")}`, args],
      ["garbage", "not-a-state", args],
      ["the real state on another call", requestState!, { ...args, description: "GitHub token with admin scope" }],
    ] as const) {
      const answer = await session.call("request_credential", callArgs, { requestState: state, inputResponses: accept, manual: true });
      expect(answer.isError, what).toBe(true);
      expect(answer.text, what).toMatch(refused);
    }
    expect((await session.call("list_credentials", {})).isError).toBeFalsy();

    // The real state, once: here the user declined, so the request stays open and the state is spent.
    const declined = await session.call("request_credential", args, { requestState, inputResponses: { approve: { action: "decline" } }, manual: true });
    expect(declined.text).toMatch(/did not open the approval page \(decline\)/);
    const replayedWhileOpen = await session.call("request_credential", args, { requestState, inputResponses: accept, manual: true });
    expect(replayedWhileOpen.isError).toBe(true);
    expect(replayedWhileOpen.text).toMatch(refused);

    // Asked again: the same open request, a fresh state; accepted, it waits for the decision and stores.
    const again = await session.call("request_credential", args, { manual: true });
    const fresh = again.inputRequired?.requestState;
    expect(fresh).toMatch(/^v1\./);
    expect(again.inputRequired?.inputRequests?.approve?.params.url).toBe(elicitation!.params.url);
    const context = await browser.newContext();
    const approval = approveOnPage(await context.newPage(), elicitation!.params.url, operatorEmail, elicitation!.params.message.match(FINGERPRINT)?.[0] ?? null, secret);
    const stored = await session.call("request_credential", args, { requestState: fresh, inputResponses: accept });
    await approval;
    await context.close();
    expect(stored.isError, stored.text).toBeFalsy();
    expect(stored.structured).toEqual({ status: "stored", vault_key: "github-token" });

    // Replayed after use: refused, nothing asked or stored again.
    const replayed = await session.call("request_credential", args, { requestState: fresh, inputResponses: accept, manual: true });
    expect(replayed.isError).toBe(true);
    expect(replayed.text).toMatch(refused);
    expect(session.alive()).toBe(true);
    const listed = await session.call("list_credentials", {});
    expect((listed.structured?.items as Array<{ vault_key: string }>).map((item) => item.vault_key)).toContain("github-token");
  });

  it("--allow-run with --api-key on the command line: the re-executed server holds the key in neither its arguments nor its environment", async () => {
    const { KEYFERRY_API_KEY: _key, ...withoutKey } = env;
    const session = await startMcp({ bin: pkg.bin, env: withoutKey, args: ["--api-key", apiKey, "--allow-run"] });
    sessions.push(session);
    const script = [
      "const fs = require('fs'); const parent = (name) => fs.readFileSync(`/proc/${process.ppid}/${name}`, 'latin1');",
      "console.log(['environ', 'cmdline'].map((name) => name + ' ' + (parent(name).includes(process.argv[1]) ? 'LEAK' : 'clean')).join(' '));",
    ].join("\n");
    const ran = await session.call("run_with_credentials", { command: [process.execPath, "-e", script, apiKey], secrets: {} });
    expect(ran.structured?.stdout).toBe("environ clean cmdline clean\n");
    expect((await session.call("list_credentials", {})).isError).toBeFalsy(); // the key still works
  });

  it("--elicitation url sends URL elicitation to a 2025-11-25 client that declared only form mode; --elicitation none never elicits", async () => {
    const forced = await start({ era: "2025-11-25", args: ["--elicitation", "url"], formElicitationOnly: true });
    const answer = await forced.call("request_credential", { description: "Forced URL", vault_key: "forced-url" });
    const sent = forced.received.map((message) => JSON.parse(message) as { method?: string; params?: Record<string, unknown> });
    const elicitation = sent.find((message) => message.method === "elicitation/create");
    expect(elicitation?.params).toMatchObject({ mode: "url", url: expect.stringMatching(/\/approve/), elicitationId: expect.any(String) });
    // The official v1 client refuses a mode it did not declare; the tool still answers with the fallback.
    expect(answer.isError).toBe(true);
    expect(answer.text).toMatch(/The client did not show the approval page\. Ask the user to open http/);
    expect(answer.structured).toMatchObject({ status: "pending", vault_key: "forced-url" });

    for (const era of ["2025-11-25", "2026-07-28"] as const) {
      const never = await start({ era, args: ["--elicitation", "none"], onUrlElicitation: () => "accept" });
      const answer = await never.call("request_credential", { description: "No elicitation", vault_key: `none-${era}` });
      expect(answer.structured, era).toMatchObject({ status: "pending", url: expect.stringMatching(/\/approve/) });
      expect(never.elicitations, era).toEqual([]);
    }
  });
});
