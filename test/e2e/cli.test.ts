// The `keyferry` CLI (sdk/dist/cli.js, the package's bin) as a user runs it, against a real
// `wrangler dev`: init, request with operator approval, get/list/delete, run, and the documented
// exit codes (sdk/README.md).
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CompactEncrypt, importJWK } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { decide, lookup } from "./support/approval";
import { createAccountAndAgent } from "./support/dev-server";
import { useDevServer } from "./support/use-dev-server";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CLI = join(ROOT, "sdk/dist/cli.js");
const TTL_SECONDS = 15;

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts the CLI with exactly `env` (nothing inherited but PATH), collecting its output. */
function startCli(args: string[], env: Record<string, string>, command = process.execPath, commandArgs = [CLI]) {
  const child = spawn(command, [...commandArgs, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const listeners = new Set<() => void>();
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const listener of listeners) listener();
  });
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<Outcome>((resolve) => child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })));
  const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
  void done.then(() => clearTimeout(timer));
  /** Resolves with the first match of `pattern` in stdout, or rejects if the CLI exits first. */
  const waitFor = (pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const match = stdout.match(pattern);
        if (match) {
          listeners.delete(check);
          resolve(match);
        }
      };
      listeners.add(check);
      check();
      void done.then((outcome) => reject(new Error(`CLI exited (${outcome.code}) before printing ${pattern}: ${outcome.stderr}`)));
    });
  return { child, done, waitFor };
}

const cli = (args: string[], env: Record<string, string>) => startCli(args, env).done;

/**
 * A CLI failure is one line on stderr, "keyferry: …", with no stack trace. `request` may print its
 * one "Waiting for approval…" line before it (stderr is not a terminal here).
 */
function expectOneLineError(outcome: Outcome, pattern: RegExp) {
  const stderr = outcome.stderr.replace(/^Waiting for approval[^\n]*\n/, "");
  expect(stderr).toMatch(/^keyferry: [^\n]+\n$/);
  expect(stderr).toMatch(pattern);
  expect(outcome.stderr).not.toMatch(/\n\s+at /);
}

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === "object" && address ? address.port : 1));
    });
  });
}

describe("keyferry CLI", () => {
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: "1", REQUEST_TTL_SECONDS: String(TTL_SECONDS) } });
  let ids: Awaited<ReturnType<typeof createAccountAndAgent>>;
  let home: string;
  let env: Record<string, string>;

  /** The operator's side: look the code up with the email, then approve (JWE to the request's key) or deny. */
  async function operator(userCode: string, decision: "approve" | "deny", value = "") {
    const found = await lookup(server, { user_code: userCode, email: ids.operatorEmail });
    expect(found.res.status, found.res.text).toBe(200);
    const body: Record<string, unknown> = { approval_token: found.res.json.approval_token, decision };
    if (decision === "approve") {
      const key = await importJWK(found.res.json.request.encryption_key, "ECDH-ES+A256KW");
      body.credential_jwe = await new CompactEncrypt(new TextEncoder().encode(value))
        .setProtectedHeader({ alg: "ECDH-ES+A256KW", enc: "A256GCM" })
        .encrypt(key);
    }
    const decided = await decide(server, found.cookie, body);
    expect(decided.status, decided.text).toBe(200);
  }

  beforeAll(async () => {
    execFileSync(process.execPath, [join(ROOT, "sdk/build.mjs")], { cwd: ROOT, stdio: "inherit" });
    ids = await createAccountAndAgent(server, { agentName: "cli-agent" });
    home = mkdtempSync(join(tmpdir(), "keyferry-cli-"));
    env = { HOME: home, KEYFERRY_URL: server.url, KEYFERRY_API_KEY: ids.apiKey };
  });

  it("prints help through the package bin (npx keyferry --help)", async () => {
    const outcome = await startCli(["--help"], { HOME: process.env.HOME ?? home }, "npx", ["--no-install", "keyferry"]).done;
    expect(outcome.code, outcome.stderr).toBe(0);
    expect(outcome.stdout).toContain("Usage:");
    expect(outcome.stdout).toMatch(/Exit codes:/);
  });

  it("init creates a 0600 master seed at ~/.config/keyferry/seed and will not overwrite it", async () => {
    const first = await cli(["init"], env);
    expect(first.code, first.stderr).toBe(0);
    const path = join(home, ".config/keyferry/seed");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(home, ".config/keyferry")).mode & 0o777).toBe(0o700);
    const seed = readFileSync(path, "utf8");
    expect(seed).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    expect(first.stdout).not.toContain(seed.trim());

    const again = await cli(["init"], env);
    expect(again.code).toBe(1);
    expectOneLineError(again, /already exists/);
    expect(readFileSync(path, "utf8")).toBe(seed);

    const elsewhere = join(home, "other/seed");
    const custom = await cli(["init"], { ...env, KEYFERRY_SEED_FILE: elsewhere });
    expect(custom.code).toBe(0);
    expect(statSync(elsewhere).mode & 0o777).toBe(0o600);
  });

  it("request waits for approval and stores the credential; get, list, run and delete use it", async () => {
    const secret = `tok-${randomBytes(10).toString("hex")}`;
    const request = startCli(["request", "--description", "Deploy token", "--vault-key", "deploy-token"], env);
    const [, userCode] = await request.waitFor(/Code:\s+([A-Z]{4}-[A-Z]{4})/);
    const [, fingerprint] = await request.waitFor(/Key fingerprint:\s+([A-Z2-7]{4}(?:-[A-Z2-7]{4}){3})/);
    await request.waitFor(/Link:\s+http:\/\/127\.0\.0\.1:\d+\/approve\?user_code=/);
    const printed = await request.waitFor(/[▀▄█][^\n]*\n(?:[^\n]*[▀▄█][^\n]*\n){10,}/); // the QR code
    expect(printed[0]).toBeTruthy();
    expect((await request.waitFor(/approval page must show key fingerprint ([A-Z2-7-]+)/))[1]).toBe(fingerprint);
    await operator(userCode!, "approve", secret);
    const stored = await request.done;
    expect(stored.code, stored.stderr).toBe(0);
    expect(stored.stdout).toContain('Stored "deploy-token" in the vault');
    // Stored, then acknowledged: the server forgot the answer it kept in case this one was lost.
    expect(stored.stderr).not.toContain("could not acknowledge");
    expect(stored.stdout + stored.stderr).not.toContain(secret);

    const got = await cli(["get", "deploy-token"], env);
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout).toBe(secret);

    const listed = await cli(["list"], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^deploy-token\t\S+\n$/);

    const ran = await cli(["run", "--secret", "X=deploy-token", "--", process.execPath, "-e", "process.stdout.write(process.env.X)"], env);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toBe(secret);
    const exitCode = await cli(["run", "--secret", "X=deploy-token", "--", process.execPath, "-e", "process.exit(42)"], env);
    expect(exitCode.code).toBe(42);
    const missing = await cli(["run", "--secret", "X=deploy-token", "--", "no-such-command-keyferry"], env);
    expect(missing.code).toBe(127);
    expectOneLineError(missing, /command not found/);

    const otherSeed = join(home, "wrong-seed");
    await cli(["init"], { ...env, KEYFERRY_SEED_FILE: otherSeed });
    const wrong = await cli(["get", "deploy-token"], { ...env, KEYFERRY_SEED_FILE: otherSeed });
    expect(wrong.code).toBe(7);
    expectOneLineError(wrong, /failed to decrypt/);

    const deleted = await cli(["delete", "deploy-token"], env);
    expect(deleted.code, deleted.stderr).toBe(0);
    const gone = await cli(["get", "deploy-token"], env);
    expect(gone.code).toBe(6);
    expectOneLineError(gone, /not_found/);
    const runGone = await cli(["run", "--secret", "X=deploy-token", "--", process.execPath, "-e", "0"], env);
    expect(runGone.code).toBe(6);
  });

  it("exits 1 on usage and configuration errors", async () => {
    for (const [args, pattern, extraEnv] of [
      [[], /no command/, {}],
      [["frobnicate"], /unknown command "frobnicate"/, {}],
      [["list", "--bogus"], /--bogus/, {}],
      [["request", "--vault-key", "x"], /--description/, {}],
      [["get", "bad name!"], /vaultKey must be/, {}],
      [["run", "--secret", "1X=y", "--", "true"], /ENV_NAME=VAULT_KEY/, {}],
      [["list"], /KEYFERRY_URL/, { KEYFERRY_URL: "" }],
      [["list"], /KEYFERRY_API_KEY/, { KEYFERRY_API_KEY: "" }],
      [["get", "x"], /run "keyferry init" first/, { KEYFERRY_SEED_FILE: join(home, "absent") }],
    ] as Array<[string[], RegExp, Record<string, string>]>) {
      const outcome = await cli(args, { ...env, ...extraEnv });
      expect(outcome.code, `${args.join(" ")}: ${outcome.stderr}`).toBe(1);
      expectOneLineError(outcome, pattern);
    }
  });

  it("exits 4 when the server cannot be reached and 8 when the API key is refused", async () => {
    const unreachable = await cli(["list"], { ...env, KEYFERRY_URL: `http://127.0.0.1:${await closedPort()}` });
    expect(unreachable.code).toBe(4);
    expectOneLineError(unreachable, /could not reach/);

    const refused = await cli(["list"], { ...env, KEYFERRY_API_KEY: "kf_wrong" });
    expect(refused.code).toBe(8);
    expectOneLineError(refused, /API key was refused/);
    expect(refused.stderr).not.toContain("kf_wrong");
  });

  it("exits 2 when the operator denies, 5 on --timeout, 130 on Ctrl-C and 3 when the request expires", async () => {
    const denied = startCli(["request", "--description", "Denied", "--vault-key", "denied", "--no-qr"], env);
    const [, deniedCode] = await denied.waitFor(/Code:\s+([A-Z]{4}-[A-Z]{4})/);
    await operator(deniedCode!, "deny");
    const deniedOutcome = await denied.done;
    expect(deniedOutcome.code).toBe(2);
    expectOneLineError(deniedOutcome, /the operator denied the request/);

    const timedOut = await cli(["request", "--description", "Times out", "--vault-key", "slow", "--timeout", "2", "--no-qr"], env);
    expect(timedOut.code).toBe(5);
    expectOneLineError(timedOut, /^keyferry: no answer from the operator within 2 s\n$/);

    const interrupted = startCli(["request", "--description", "Interrupted", "--vault-key", "ctrl-c", "--no-qr"], env);
    await interrupted.waitFor(/Code:/);
    interrupted.child.kill("SIGINT");
    const interruptedOutcome = await interrupted.done;
    expect(interruptedOutcome.code).toBe(130);
    expectOneLineError(interruptedOutcome, /^keyferry: interrupted\n$/);

    const expired = await cli(["request", "--description", "Expires", "--vault-key", "expires", "--no-qr"], env);
    expect(expired.code).toBe(3);
    expectOneLineError(expired, /^keyferry: the request expired before it was approved\n$/);
  }, TTL_SECONDS * 1000 + 60_000);
});
