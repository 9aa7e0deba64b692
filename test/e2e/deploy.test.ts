// Issue 22: `npm run deploy`.
// - `--dry-run` builds the real bundle offline with wrangler and prints its size; the gzip bundle
//   must stay under 1 MiB.
// - Against a recording stand-in for wrangler (KEYFERRY_WRANGLER; no Cloudflare account here): it
//   refuses without an https PUBLIC_BASE_URL before calling wrangler at all, puts only the secrets
//   that are missing, with the value on stdin and never in an argument, deploys with the
//   PUBLIC_BASE_URL var, and stops when `wrangler secret list` fails for another reason than a
//   Worker that does not exist yet.
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
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

/** A `wrangler` that records each call (argv and stdin) as a JSON line and answers like the real one would. */
function fakeWrangler(secretList: { exitCode: number; output: string }): { bin: string; calls: () => Array<{ argv: string[]; stdin: string }> } {
  const dir = mkdtempSync(join(tmpdir(), "keyferry-fake-wrangler-"));
  const log = join(dir, "calls.jsonl");
  const bin = join(dir, "wrangler");
  writeFileSync(
    bin,
    `#!/usr/bin/env node
const fs = require("node:fs");
const argv = process.argv.slice(2);
const stdin = argv[0] === "secret" && argv[1] === "put" ? fs.readFileSync(0, "utf8") : "";
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ argv, stdin }) + "\\n");
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
      .map((line) => JSON.parse(line) as { argv: string[]; stdin: string });
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

  it("puts only the missing secrets, on stdin, after deploying with the PUBLIC_BASE_URL var; prints the new ADMIN_TOKEN once", async () => {
    const fake = fakeWrangler({ exitCode: 0, output: JSON.stringify([{ name: "TOKEN_SIGNING_KEY", type: "secret_text" }]) });
    const { code, stdout } = await deploy([], { KEYFERRY_WRANGLER: fake.bin, PUBLIC_BASE_URL: "https://keyferry.example.com" });
    expect(code, stdout).toBe(0);
    const calls = fake.calls();
    expect(calls.map((call) => call.argv)).toEqual([
      ["secret", "list", "--format", "json"],
      ["deploy", "--var", "PUBLIC_BASE_URL:https://keyferry.example.com"],
      ["secret", "put", "ADMIN_TOKEN"],
    ]);
    const adminToken = calls[2]!.stdin;
    expect(adminToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(stdout.split(adminToken)).toHaveLength(2); // shown once
    expect(stdout).toMatch(/created the secret ADMIN_TOKEN/);
    expect(stdout).toContain("https://keyferry.example.com/v1/admin/accounts");
  });

  it("treats a Worker that does not exist yet as having no secrets, and stops on any other secret list failure", async () => {
    const fresh = fakeWrangler({ exitCode: 1, output: '✘ [ERROR] A request to the Cloudflare API failed. This Worker does not exist on your account. [code: 10007]' });
    const first = await deploy(["--var", "PUBLIC_BASE_URL:https://k.example.com"], { KEYFERRY_WRANGLER: fresh.bin });
    expect(first.code, first.stderr).toBe(0);
    expect(fresh.calls().map((call) => call.argv.slice(0, 3))).toEqual([
      ["secret", "list", "--format"],
      ["deploy", "--var", "PUBLIC_BASE_URL:https://k.example.com"],
      ["secret", "put", "ADMIN_TOKEN"],
      ["secret", "put", "TOKEN_SIGNING_KEY"],
    ]);

    const loggedOut = fakeWrangler({ exitCode: 1, output: "✘ [ERROR] You are not authenticated. Please run `wrangler login`." });
    const refused = await deploy(["--var", "PUBLIC_BASE_URL:https://k.example.com"], { KEYFERRY_WRANGLER: loggedOut.bin });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/wrangler secret list failed \(logged in\? npx wrangler login\)/);
    expect(loggedOut.calls().map((call) => call.argv[0])).toEqual(["secret"]);
  });
});
