// `npm run dev`: a local Keyferry on a fresh clone with no manual setup.
// 1. Creates .dev.vars (gitignored) with a random ADMIN_TOKEN, TOKEN_SIGNING_KEY and VAPID_PRIVATE_KEY if missing,
//    keeping any value already there.
// 2. Runs `wrangler dev --persist-to .wrangler/state` (Durable Objects survive restarts), passing
//    on any extra arguments (e.g. `npm run dev -- --port 9000`) and signals.
// 3. Sets PUBLIC_BASE_URL to its own URL unless given (`--var PUBLIC_BASE_URL:…` or .dev.vars): the
//    links in emails and webhooks are built only from it, never from a request's Host header.
// 4. Once the server answers, prints the URL, the admin token and the curl lines to get started,
//    and an enrolment link for the first operator: on first run it creates an account ("My team",
//    owner KEYFERRY_OPERATOR_EMAIL or you@example.com, remembered in the persist directory), later
//    runs re-invite that owner (a fresh single-use link; earlier ones are withdrawn).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { vapidKeyPair } from "./vapid-key.mjs";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const DEV_VARS = join(ROOT, ".dev.vars");
const BIN = join(ROOT, "node_modules", ".bin");
const READY_TIMEOUT_MS = 90_000;

/** Reads KEY=VALUE lines (dotenv syntax, optionally quoted) into an object. */
function parseDevVars(text) {
  const vars = {};
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!match) continue;
    let value = match[2];
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    vars[match[1]] = value;
  }
  return vars;
}

/** Adds the secrets the worker needs to .dev.vars, never touching values that are already set. */
function ensureDevVars() {
  const existing = existsSync(DEV_VARS) ? readFileSync(DEV_VARS, "utf8") : "";
  const vars = parseDevVars(existing);
  const missing = {};
  // TOKEN_SIGNING_KEY: base64url of 32 random bytes (the worker's HMAC key for device codes).
  if (!vars.ADMIN_TOKEN) missing.ADMIN_TOKEN = randomBytes(24).toString("base64url");
  if (!vars.TOKEN_SIGNING_KEY) missing.TOKEN_SIGNING_KEY = randomBytes(32).toString("base64url");
  // VAPID_PRIVATE_KEY: the Web Push signing key (RFC 8292), a P-256 private JWK on one line, quoted.
  if (!vars.VAPID_PRIVATE_KEY) missing.VAPID_PRIVATE_KEY = `'${vapidKeyPair().privateJwk}'`;
  const names = Object.keys(missing);
  if (names.length > 0) {
    const header = existing ? "" : "# Local secrets for `npm run dev` (gitignored). Made by scripts/dev.mjs.\n";
    const separator = existing && !existing.endsWith("\n") ? "\n" : "";
    const lines = names.map((name) => `${name}=${missing[name]}\n`).join("");
    writeFileSync(DEV_VARS, existing + separator + header + lines, { mode: 0o600 });
    console.log(`[keyferry] wrote ${names.join(", ")} to .dev.vars`);
  }
  return { ...vars, ...missing };
}

/** The value of `--name value` or `--name=value` in the forwarded arguments, if given. */
function option(args, name) {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name) return args[i + 1];
    if (args[i].startsWith(`${name}=`)) return args[i].slice(name.length + 1);
  }
  return undefined;
}

/** Whether `--var NAME:value` is among the forwarded arguments. */
function hasVar(args, name) {
  return args.some((arg, i) => (arg === "--var" ? args[i + 1] : arg.startsWith("--var=") ? arg.slice(6) : "")?.startsWith(`${name}:`));
}

/** An admin token given on the command line (`--var ADMIN_TOKEN:x`) wins over .dev.vars, as in wrangler. */
function adminTokenFrom(args, fallback) {
  let token = fallback;
  for (let i = 0; i < args.length; i++) {
    const value = args[i] === "--var" ? args[i + 1] : args[i].startsWith("--var=") ? args[i].slice(6) : undefined;
    if (value?.startsWith("ADMIN_TOKEN:")) token = value.slice("ADMIN_TOKEN:".length);
  }
  return token;
}

const DEV_ACCOUNT_FILE = "keyferry-dev-account.json";

/** The first operator's enrolment link: the dev account is made once, its owner re-invited on every run. */
async function firstOperator(url, adminToken, persistDir) {
  const file = resolve(ROOT, persistDir, DEV_ACCOUNT_FILE);
  const headers = { authorization: `Bearer ${adminToken}`, "content-type": "application/json" };
  const post = async (path, body) => {
    const res = await fetch(`${url}${path}`, { method: "POST", headers, body: JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
    return { status: res.status, body: await res.json().catch(() => ({})) };
  };
  try {
    const saved = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : null;
    if (saved?.account_id && saved.operator_email) {
      const again = await post(`/v1/admin/accounts/${saved.account_id}/operators`, { email: saved.operator_email });
      if (again.status === 201) return { ...saved, invitation_url: again.body.invitation_url };
    }
    const operatorEmail = process.env.KEYFERRY_OPERATOR_EMAIL || "you@example.com";
    const created = await post("/v1/admin/accounts", { name: "My team", operator_email: operatorEmail });
    if (created.status !== 201) return null;
    writeFileSync(file, JSON.stringify({ account_id: created.body.account_id, operator_email: operatorEmail }) + "\n");
    return { account_id: created.body.account_id, operator_email: operatorEmail, invitation_url: created.body.invitation_url };
  } catch {
    return null;
  }
}

function operatorBanner(operator) {
  if (!operator) return " (Could not create the first operator's account; use the curl lines above.)";
  return ` Your account ${operator.account_id}, owner ${operator.operator_email}: enrol a passkey (single use, 24 h):
   ${operator.invitation_url}
 Then agents of this account (create one as above with this account_id) ask; you approve with the passkey.`;
}

function banner(url, adminToken, operator) {
  const json = "-H 'Content-Type: application/json'";
  const auth = `-H 'Authorization: Bearer ${adminToken}'`;
  console.log(`
──────────────────────────────────────────────────────────────────────────────
 Keyferry is running at ${url}
 Admin token (from .dev.vars): ${adminToken}

 Create an account:
   curl -s -X POST ${url}/v1/admin/accounts ${auth} ${json} \\
     -d '{"name": "My team", "operator_email": "you@example.com"}'

 Create an agent (use the account_id printed above; the api_key is shown once):
   curl -s -X POST ${url}/v1/admin/accounts/<account_id>/agents ${auth} ${json} \\
     -d '{"name": "my-agent"}'

 Approval page: ${url}/approve

${operatorBanner(operator)}
──────────────────────────────────────────────────────────────────────────────
`);
}

async function waitUntilReady(currentUrl, isRunning) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline && isRunning()) {
    try {
      const res = await fetch(`${currentUrl()}/.well-known/oauth-authorization-server`, { signal: AbortSignal.timeout(5_000) });
      await res.arrayBuffer();
      if (res.status < 500) return true;
    } catch {
      // Not listening yet.
    }
    await new Promise((done) => setTimeout(done, 300));
  }
  return false;
}

const forwarded = process.argv.slice(2);
const vars = ensureDevVars();
const adminToken = adminTokenFrom(forwarded, vars.ADMIN_TOKEN);
const args = ["dev", ...forwarded];
if (option(forwarded, "--persist-to") === undefined) args.push("--persist-to", join(".wrangler", "state"));

// Wrangler prints the address it listens on; until it does, assume the one the arguments ask for.
const port = option(forwarded, "--port") ?? "8787";
const ip = option(forwarded, "--ip") ?? "localhost";
const fallbackUrl = `http://${ip.includes(":") ? `[${ip}]` : ip}:${port}`.replace("0.0.0.0", "localhost");
if (!vars.PUBLIC_BASE_URL && !hasVar(forwarded, "PUBLIC_BASE_URL")) args.push("--var", `PUBLIC_BASE_URL:${fallbackUrl}`);
// Push services want a contact for the sender (RFC 8292 §2.1); locally any mailto: will do.
if (!hasVar(forwarded, "VAPID_SUBJECT")) args.push("--var", "VAPID_SUBJECT:mailto:keyferry@localhost");

// node_modules/.bin first on PATH: wrangler's `#!/usr/bin/env node` then finds the project's Node 22
// (the `node` devDependency) even when this script is started by an older system Node.
const env = { ...process.env, PATH: [BIN, process.env.PATH ?? ""].join(delimiter) };
const wrangler = spawn(join(BIN, process.platform === "win32" ? "wrangler.cmd" : "wrangler"), args, {
  cwd: ROOT,
  env,
  stdio: ["inherit", "pipe", "pipe"],
});

let running = true;
let readyUrl;

function watch(stream, sink) {
  stream.on("data", (chunk) => {
    sink.write(chunk);
    const ready = /Ready on (https?:\/\/[^\s]+)/.exec(chunk.toString().replace(/\x1b\[[0-9;]*m/g, ""));
    if (ready && !readyUrl) readyUrl = ready[1].replace(/\/$/, "");
  });
}
watch(wrangler.stdout, process.stdout);
watch(wrangler.stderr, process.stderr);

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    if (running) wrangler.kill(signal);
  });
}

wrangler.on("error", (error) => {
  console.error(`[keyferry] could not start wrangler: ${error.message}. Did you run \`npm install\`?`);
  process.exit(1);
});
wrangler.on("exit", (code, signal) => {
  running = false;
  process.exit(code ?? (signal ? 128 + (signal === "SIGINT" ? 2 : 15) : 1));
});

const currentUrl = () => (readyUrl ?? fallbackUrl).replace("0.0.0.0", "localhost");
if (await waitUntilReady(currentUrl, () => running)) {
  banner(currentUrl(), adminToken, await firstOperator(currentUrl(), adminToken, option(forwarded, "--persist-to") ?? join(".wrangler", "state")));
}
