// The README's three-call SDK example, run exactly as written (extracted from README.md) against a
// real `wrangler dev`, while an operator approves through the page's JSON calls.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { CompactEncrypt, importJWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyFingerprint } from "../../core/fingerprint";
import { CREDENTIAL_JWE_ALG, CREDENTIAL_JWE_HEADER } from "../../core/jwe";
import { createClient } from "../../sdk/src/index";
import { decide, lookup } from "./support/approval";
import { createAccountAndAgent } from "./support/dev-server";
import { useDevServer } from "./support/use-dev-server";
import { sleep } from "../support/sleep";

const ROOT = resolve(__dirname, "../..");

function readmeExample(): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## For agent developers"));
  const block = section.match(/```ts\n([\s\S]*?)```/);
  if (!block) throw new Error("README.md has no ts example under 'For agent developers'");
  // The example's own `import ... from "keyferry"` (if shown) is replaced by the bundle's path below.
  return block[1]!.replace(/^import \{[^}]*\} from "keyferry";\n/m, "");
}

describe("the README's SDK example", () => {
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: "1" } });
  let dir: string;

  beforeAll(async () => {
    execFileSync(process.execPath, [join(ROOT, "sdk/build.mjs")], { cwd: ROOT, stdio: "ignore" });
    dir = mkdtempSync(join(tmpdir(), "keyferry-readme-"));
  });
  afterAll(async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("runs as written: request, wait for the operator, store in the vault", async () => {
    const ids = await createAccountAndAgent(server);
    const masterSeed = randomBytes(32).toString("base64url");
    const script = join(dir, "example.mjs");
    writeFileSync(
      script,
      [
        `import { createClient } from ${JSON.stringify(join(ROOT, "sdk/dist/index.js"))};`,
        "const { BASE_URL: baseUrl, API_KEY: apiKey, MASTER_SEED: masterSeed } = process.env;",
        readmeExample(),
        "console.log(`STORED ${vaultKey} ${credentialValue.length}`);",
      ].join("\n"),
    );
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, BASE_URL: server.url, API_KEY: ids.apiKey, MASTER_SEED: masterSeed },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const exited = new Promise<number | null>((done) => child.on("exit", done));

    const deadline = Date.now() + 30_000;
    while (!/[B-Z]{4}-[B-Z]{4}/.test(output) && Date.now() < deadline) await sleep(100);
    const userCode = output.match(/[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}/)?.[0];
    expect(userCode, output).toBeDefined();

    const found = await lookup(server, { user_code: userCode!, email: ids.operatorEmail });
    const request = found.res.json.request;
    // The message the example printed carries the same fingerprint the page shows.
    expect(request.public_key).toBeDefined();
    expect(output).toContain(await keyFingerprint(request.public_key!));
    const credential = `sk-readme-${randomBytes(8).toString("hex")}`;
    const jwe = await new CompactEncrypt(new TextEncoder().encode(credential))
      .setProtectedHeader(CREDENTIAL_JWE_HEADER)
      .encrypt(await importJWK(request.encryption_key, CREDENTIAL_JWE_ALG));
    expect((await decide(server, found.cookie, { approval_token: found.res.json.approval_token, decision: "approve", credential_jwe: jwe })).status).toBe(200);

    expect(await exited, output).toBe(0);
    expect(output).toContain(`STORED openai-api-key ${credential.length}`);
    const stored = await createClient({ baseUrl: server.url, apiKey: ids.apiKey, masterSeed }).vault.get("openai-api-key");
    expect(stored).toBe(credential);
  });
});
