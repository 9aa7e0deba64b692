// Issue 22: `npm run deploy`.
// - `--dry-run` builds the real bundle offline with wrangler and prints its size; the gzip bundle
//   must stay under 1 MiB.
// - Against a recording stand-in for wrangler (KEYFERRY_WRANGLER; no Cloudflare account here): it
//   refuses without an https PUBLIC_BASE_URL before calling wrangler at all, uploads only the secrets
//   that are missing with the version (a 0600 --secrets-file, never an argument), deploys with the
//   PUBLIC_BASE_URL var, and stops when `wrangler secret list` fails for another reason than a
//   Worker that does not exist yet.
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { cleanEnv, ROOT } from "./support/installed-package";

const run = promisify(execFile);
const MiB = 1024 * 1024;

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function deploy(args: string[], env: Record<string, string> = {}): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run("npm", ["run", "--silent", "deploy", "--", ...args], { cwd: ROOT, env: cleanEnv(env), maxBuffer: 16 * MiB });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

interface Call {
  argv: string[];
  /** The --secrets-file's contents and mode as wrangler found them, if one was given. */
  secrets: { json: string; mode: string } | null;
}

/** A `wrangler` that records each call (argv and the secrets file) as a JSON line and answers like the real one would. */
function fakeWrangler(secretList: { exitCode: number; output: string }): { bin: string; calls: () => Call[] } {
  const dir = mkdtempSync(join(tmpdir(), "keyferry-fake-wrangler-"));
  const log = join(dir, "calls.jsonl");
  const bin = join(dir, "wrangler");
  writeFileSync(
    bin,
    `#!/usr/bin/env node
const fs = require("node:fs");
const argv = process.argv.slice(2);
const file = argv.indexOf("--secrets-file") >= 0 ? argv[argv.indexOf("--secrets-file") + 1] : null;
const secrets = file ? { json: fs.readFileSync(file, "utf8"), mode: (fs.statSync(file).mode & 0o777).toString(8) } : null;
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ argv, secrets }) + "\\n");
if (argv[0] === "secret" && argv[1] === "list") {
  process[${secretList.exitCode} === 0 ? "stdout" : "stderr"].write(${JSON.stringify(secretList.output)});
  process.exit(${secretList.exitCode});
}
`,
  );
  chmodSync(bin, 0o755);
  const calls = () =>
    readFileSync(log, { encoding: "utf8", flag: "a+" })
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Call);
  return { bin, calls };
}

describe("npm run deploy", () => {
  it("--dry-run builds the bundle offline and prints its size; gzip stays under 1 MiB", async () => {
    const { code, stdout } = await deploy(["--dry-run"]);
    expect(code, stdout).toBe(0);
    const size = /bundle size: (\d+) bytes raw \([\d.]+ KiB\), (\d+) bytes gzip/.exec(stdout);
    expect(size, stdout).not.toBeNull();
    const [raw, gzip] = [Number(size![1]), Number(size![2])];
    console.log(`bundle: ${raw} bytes raw, ${gzip} bytes gzip`);
    expect(raw).toBeGreaterThan(gzip);
    expect(gzip).toBeGreaterThan(10_000); // the worker really is in it
    expect(gzip).toBeLessThan(MiB);
  });

  it("refuses without an https PUBLIC_BASE_URL, before calling wrangler", async () => {
    const fake = fakeWrangler({ exitCode: 0, output: "[]" });
    const missing = await deploy([], { KEYFERRY_WRANGLER: fake.bin });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/refusing to deploy without PUBLIC_BASE_URL/);
    const plain = await deploy(["--var", "PUBLIC_BASE_URL:http://keyferry.example.com"], { KEYFERRY_WRANGLER: fake.bin });
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/must be an https origin/);
    expect(fake.calls()).toEqual([]);
  });

  it("uploads only the missing secrets with the version, from a 0600 file it removes; prints the new ADMIN_TOKEN once", async () => {
    const fake = fakeWrangler({ exitCode: 0, output: JSON.stringify([{ name: "TOKEN_SIGNING_KEY", type: "secret_text" }]) });
    const { code, stdout } = await deploy([], { KEYFERRY_WRANGLER: fake.bin, PUBLIC_BASE_URL: "https://keyferry.example.com" });
    expect(code, stdout).toBe(0);
    const calls = fake.calls();
    expect(calls.map((call) => call.argv[0])).toEqual(["secret", "deploy"]);
    const [, deployCall] = calls;
    const file = deployCall!.argv[deployCall!.argv.indexOf("--secrets-file") + 1]!;
    expect(deployCall!.argv).toEqual(["deploy", "--secrets-file", file, "--var", "PUBLIC_BASE_URL:https://keyferry.example.com"]);
    expect(deployCall!.secrets!.mode).toBe("600");
    expect(existsSync(file)).toBe(false);
    const secrets = JSON.parse(deployCall!.secrets!.json) as Record<string, string>;
    expect(Object.keys(secrets).sort()).toEqual(["ADMIN_TOKEN", "VAPID_PRIVATE_KEY"]);
    expect(secrets.ADMIN_TOKEN).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(JSON.parse(secrets.VAPID_PRIVATE_KEY!)).toMatchObject({ kty: "EC", crv: "P-256" });
    expect(stdout.split(secrets.ADMIN_TOKEN!)).toHaveLength(2); // shown once
    expect(stdout).not.toContain(secrets.VAPID_PRIVATE_KEY);
    expect(stdout).toMatch(/created the secret ADMIN_TOKEN/);
    expect(stdout).toContain("https://keyferry.example.com/v1/admin/accounts");
  });

  it("treats a Worker that does not exist yet as having no secrets, and stops on any other secret list failure", async () => {
    const fresh = fakeWrangler({ exitCode: 1, output: '✘ [ERROR] A request to the Cloudflare API failed. This Worker does not exist on your account. [code: 10007]' });
    const first = await deploy(["--var", "PUBLIC_BASE_URL:https://k.example.com"], { KEYFERRY_WRANGLER: fresh.bin });
    expect(first.code, first.stderr).toBe(0);
    const [, firstDeploy] = fresh.calls();
    expect(firstDeploy!.argv.slice(0, 2)).toEqual(["deploy", "--secrets-file"]);
    expect(Object.keys(JSON.parse(firstDeploy!.secrets!.json)).sort()).toEqual(["ADMIN_TOKEN", "TOKEN_SIGNING_KEY", "VAPID_PRIVATE_KEY"]);

    const loggedOut = fakeWrangler({ exitCode: 1, output: "✘ [ERROR] You are not authenticated. Please run `wrangler login`." });
    const refused = await deploy(["--var", "PUBLIC_BASE_URL:https://k.example.com"], { KEYFERRY_WRANGLER: loggedOut.bin });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/wrangler secret list failed \(logged in\? npx wrangler login\)/);
    expect(loggedOut.calls().map((call) => call.argv[0])).toEqual(["secret"]);
  });
});
