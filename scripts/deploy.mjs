// `npm run deploy`: Keyferry to your Cloudflare account in one command, around wrangler.
// 1. Refuses without PUBLIC_BASE_URL (emailed and webhook approval links are built only from it):
//    `npm run deploy -- --var PUBLIC_BASE_URL:https://keyferry.example.com`, or the PUBLIC_BASE_URL
//    environment variable, or a value under [vars] in wrangler.toml.
// 2. Lists the Worker's secrets (`wrangler secret list`; none when the Worker does not exist yet)
//    to find the missing ones of [secrets].required in wrangler.toml (ADMIN_TOKEN, TOKEN_SIGNING_KEY,
//    VAPID_PRIVATE_KEY).
// 3. Makes each missing secret (random bytes; a new P-256 key for VAPID) and runs `wrangler deploy
//    --secrets-file` with them, passing on any other arguments: the secrets go up with the version,
//    never on a command line, so the Worker never runs without them.
// 4. Prints what to do next, with a new ADMIN_TOKEN once (it is stored nowhere else).
// `npm run deploy -- --dry-run` builds the bundle offline (`wrangler deploy --dry-run --outdir`),
// needs no login, and prints the bundle's size, raw and gzip.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { vapidKeyPair } from "./vapid-key.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** KEYFERRY_WRANGLER: another wrangler executable (test/e2e/deploy.test.ts gives it a recording fake). */
const WRANGLER = process.env.KEYFERRY_WRANGLER ?? join(ROOT, "node_modules", ".bin", "wrangler");
/** How each secret of [secrets].required is made; one without a maker here stops the deploy before it starts. */
const MAKE_SECRET = {
  ADMIN_TOKEN: () => randomBytes(32).toString("base64url"),
  TOKEN_SIGNING_KEY: () => randomBytes(32).toString("base64url"),
  VAPID_PRIVATE_KEY: () => vapidKeyPair().privateJwk,
};

const args = process.argv.slice(2);
process.exitCode = args.includes("--dry-run") ? dryRun(args.filter((arg) => arg !== "--dry-run")) : deploy(args);

function dryRun(extra) {
  const outdir = mkdtempSync(join(tmpdir(), "keyferry-bundle-"));
  try {
    const built = wrangler(["deploy", "--dry-run", "--outdir", outdir, ...extra], { inherit: true });
    if (built.status !== 0) return built.status ?? 1;
    let raw = 0;
    let gzip = 0;
    // The modules wrangler would upload (it also writes a README.md and, maybe, source maps).
    for (const file of filesUnder(outdir).filter((path) => /\.(m?js|wasm)$/.test(path))) {
      const bytes = readFileSync(file);
      raw += bytes.length;
      gzip += gzipSync(bytes, { level: 9 }).length;
      console.log(`[keyferry] ${relative(outdir, file)}: ${kib(bytes.length)} raw`);
    }
    console.log(`[keyferry] bundle size: ${raw} bytes raw (${kib(raw)}), ${gzip} bytes gzip (${kib(gzip)})`);
    return 0;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

function deploy(extra) {
  const baseUrl = publicBaseUrl(extra);
  if (!baseUrl) {
    console.error(
      "[keyferry] refusing to deploy without PUBLIC_BASE_URL (approval links in emails and webhooks are built only from it):\n" +
        "  npm run deploy -- --var PUBLIC_BASE_URL:https://keyferry.example.com\n" +
        "  (or PUBLIC_BASE_URL=https://… npm run deploy, or set it under [vars] in wrangler.toml)",
    );
    return 1;
  }
  if (!/^https:\/\/[^/\s]+\/?$/.test(baseUrl)) {
    console.error(`[keyferry] PUBLIC_BASE_URL must be an https origin such as https://keyferry.example.com (got ${JSON.stringify(baseUrl)})`);
    return 1;
  }
  const passOn = extra.some((arg) => arg.startsWith("PUBLIC_BASE_URL:")) ? extra : [...extra, "--var", `PUBLIC_BASE_URL:${baseUrl.replace(/\/$/, "")}`];

  const existing = existingSecrets();
  if (existing === undefined) return 1;
  const missing = requiredSecrets().filter((name) => !existing.names.includes(name));
  const unmakeable = missing.filter((name) => !MAKE_SECRET[name]);
  if (unmakeable.length > 0) {
    console.error(`[keyferry] the Worker needs ${unmakeable.join(", ")}, which this script cannot make: put each with \`npx wrangler secret put NAME\`, then run it again`);
    return 1;
  }

  // The missing secrets go up with the version itself (`--secrets-file`, a 0600 file removed at
  // once), so the Worker never runs without them and wrangler's check of [secrets].required passes.
  const made = Object.fromEntries(missing.map((name) => [name, MAKE_SECRET[name]()]));
  const secretsDir = mkdtempSync(join(tmpdir(), "keyferry-secrets-"));
  const secretsFile = join(secretsDir, "secrets.json");
  try {
    const withSecrets = missing.length > 0 ? ["--secrets-file", secretsFile] : [];
    if (missing.length > 0) writeFileSync(secretsFile, JSON.stringify(made), { mode: 0o600 });
    const deployed = wrangler(["deploy", ...withSecrets, ...passOn], { inherit: true });
    if (deployed.status !== 0) return deployed.status ?? 1;
  } finally {
    rmSync(secretsDir, { recursive: true, force: true });
  }
  for (const name of missing) console.log(`[keyferry] created the secret ${name}`);

  console.log(`\n[keyferry] deployed at ${baseUrl}. Next:`);
  if (made.ADMIN_TOKEN) {
    console.log(`  - Your ADMIN_TOKEN (shown once, stored nowhere else: keep it in a password manager):\n      ${made.ADMIN_TOKEN}`);
  }
  console.log(
    [
      `  - Create an account and an agent (README, "A handoff in five requests"), e.g.`,
      `      curl -X POST ${baseUrl.replace(/\/$/, "")}/v1/admin/accounts -H "Authorization: Bearer $ADMIN_TOKEN" -H "content-type: application/json" -d '{"operator_email":"you@example.com"}'`,
      `  - Email: enable Cloudflare Email Routing on the domain of EMAIL_FROM and verify each operator's address.`,
      `  - Give each rate-limit binding in wrangler.toml a namespace_id unique in your account.`,
      `  - Agents: npx keyferry init, then KEYFERRY_URL=${baseUrl.replace(/\/$/, "")} KEYFERRY_API_KEY=kf1.… npx keyferry request …`,
    ].join("\n"),
  );
  return 0;
}

/** `--var PUBLIC_BASE_URL:…` in the arguments, else the environment, else wrangler.toml's [vars]. */
function publicBaseUrl(extra) {
  for (let i = 0; i < extra.length; i++) {
    const value = extra[i] === "--var" ? extra[i + 1] : extra[i].startsWith("--var=") ? extra[i].slice(6) : undefined;
    if (value?.startsWith("PUBLIC_BASE_URL:")) return value.slice("PUBLIC_BASE_URL:".length);
  }
  if (process.env.PUBLIC_BASE_URL) return process.env.PUBLIC_BASE_URL;
  return /^\s*PUBLIC_BASE_URL\s*=\s*"([^"]*)"/m.exec(readFileSync(join(ROOT, "wrangler.toml"), "utf8"))?.[1] || undefined;
}

/** [secrets].required in wrangler.toml: the one list of what the Worker needs. */
function requiredSecrets() {
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  const list = /\[secrets\][^[]*?required\s*=\s*\[([^\]]*)\]/.exec(toml)?.[1] ?? "";
  return [...list.matchAll(/"([^"]+)"/g)].map((match) => match[1]);
}

/** The names of the Worker's secrets; none when the Worker does not exist yet; undefined (and why, on stderr) on any other failure. */
function existingSecrets() {
  const listed = wrangler(["secret", "list", "--format", "json"]);
  if (listed.status === 0) return { names: JSON.parse(listed.stdout).map((secret) => secret.name) };
  if (/\b10007\b|not found|does not exist/i.test(listed.stderr + listed.stdout)) return { names: [] };
  console.error(`[keyferry] wrangler secret list failed (logged in? npx wrangler login):\n${listed.stderr || listed.stdout}`);
  return undefined;
}

function wrangler(wranglerArgs, { inherit = false, input } = {}) {
  return spawnSync(WRANGLER, wranglerArgs, {
    cwd: ROOT,
    encoding: "utf8",
    stdio: inherit ? "inherit" : ["pipe", "pipe", "pipe"],
    ...(input !== undefined ? { input } : {}),
  });
}

function filesUnder(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

function kib(bytes) {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}
