import { spawn } from "node:child_process";
import { constants } from "node:os";
import { KeyferryError } from "../errors";
import { checkVaultKey } from "../validate";
import type { ParsedArgs } from "./args";
import { clientFrom, seedFilePath, writeNewSeed, type Env } from "./config";
import { startCountdown } from "./countdown";
import { EXIT } from "./exit-codes";
import { renderQr } from "./qr";
import { CliError } from "./usage-error";

const out = (text: string) => process.stdout.write(text);
const warn = (line: string) => process.stderr.write(`keyferry: ${line}\n`);

export async function init(args: ParsedArgs, env: Env): Promise<number> {
  const path = seedFilePath(args, env);
  writeNewSeed(path, args.force);
  out(`Created a master seed at ${path} (mode 0600).\nBack it up somewhere safe: without it your vault cannot be decrypted.\n`);
  return EXIT.OK;
}

export async function request(args: ParsedArgs, env: Env, signal: AbortSignal): Promise<number> {
  if (!args.description) throw new CliError("request needs --description");
  if (!args.vaultKey) throw new CliError("request needs --vault-key");
  const vaultKey = usageChecked(() => checkVaultKey(args.vaultKey));
  let timeout: number | undefined;
  if (args.timeout !== undefined) {
    if (!/^\d+$/.test(args.timeout) || Number(args.timeout) === 0) throw new CliError("--timeout must be a whole number of seconds");
    timeout = Number(args.timeout) * 1000;
  }
  const ferry = clientFrom(args, env, warn, true);

  const req = await ferry.credentials.request({ description: args.description, vaultKey, endToEnd: !args.noE2e, signal });
  out(`${req.message}\n\n`);
  if (req.userCode) out(`  Code:            ${req.userCode}\n`);
  if (req.keyFingerprint) out(`  Key fingerprint: ${req.keyFingerprint}\n`);
  if (req.verificationUriComplete) out(`  Link:            ${req.verificationUriComplete}\n`);
  if (req.verificationUriComplete && !args.noQr) out(`\n${renderQr(req.verificationUriComplete)}\n`);
  out("\n");

  const stopCountdown = startCountdown(req.expiresAt, process.stderr);
  let approved;
  try {
    approved = await ferry.credentials.waitForApproval(req.deviceCode, { signal, acknowledge: false, ...(timeout ? { timeout } : {}) });
  } finally {
    stopCountdown();
  }
  // Not yet acknowledged, the server keeps a key-bound delivery for a minute only: ride out a short outage rather than lose it.
  for (let attempt = 1; ; attempt++) {
    try {
      await ferry.vault.put(approved.vaultKey, approved.credentialValue);
      break;
    } catch (error) {
      const transient = error instanceof KeyferryError && (error.code === "NETWORK" || error.code === "SERVER_ERROR");
      if (!transient || attempt === 3) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
    }
  }
  // Stored: the server may forget the answer it kept in case this one was lost (best effort: it does anyway within a minute).
  await ferry.credentials.acknowledge(req.deviceCode, { signal }).catch(() => warn("could not acknowledge the delivery; the server forgets it by itself"));
  out(`Approved. Stored "${approved.vaultKey}" in the vault (encrypted on this machine).\n`);
  return EXIT.OK;
}

export async function get(args: ParsedArgs, env: Env): Promise<number> {
  const vaultKey = usageChecked(() => checkVaultKey(args.positionals[0]));
  const value = await clientFrom(args, env, warn, true).vault.get(vaultKey);
  // Exact bytes into pipes ($(keyferry get x)); a newline only for a human at a terminal.
  out(process.stdout.isTTY ? `${value}\n` : value);
  return EXIT.OK;
}

export async function list(args: ParsedArgs, env: Env): Promise<number> {
  const items = await clientFrom(args, env, warn, false).vault.list();
  for (const item of items) out(`${item.vaultKey}\t${item.updatedAt}\n`);
  return EXIT.OK;
}

export async function remove(args: ParsedArgs, env: Env): Promise<number> {
  const vaultKey = usageChecked(() => checkVaultKey(args.positionals[0]));
  await clientFrom(args, env, warn, false).vault.delete(vaultKey);
  process.stderr.write(`Deleted "${vaultKey}".\n`);
  return EXIT.OK;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export async function run(args: ParsedArgs, env: Env): Promise<number> {
  if (args.secrets.length === 0) throw new CliError("run needs at least one --secret ENV_NAME=VAULT_KEY");
  const [command, ...commandArgs] = args.commandLine;
  if (command === undefined) throw new CliError('run needs a command after "--"');
  const wanted = args.secrets.map((spec) => {
    const at = spec.indexOf("=");
    const name = spec.slice(0, at);
    const vaultKey = spec.slice(at + 1);
    if (at <= 0 || !ENV_NAME.test(name)) throw new CliError(`--secret ${JSON.stringify(spec)} must look like ENV_NAME=VAULT_KEY`);
    return { name, vaultKey: usageChecked(() => checkVaultKey(vaultKey)) };
  });

  const ferry = clientFrom(args, env, warn, true);
  const values = await Promise.all(wanted.map(({ vaultKey }) => ferry.vault.get(vaultKey)));
  const childEnv: Record<string, string | undefined> = { ...env };
  wanted.forEach(({ name }, i) => (childEnv[name] = values[i]));
  return spawnInheriting(command, commandArgs, childEnv);
}

function spawnInheriting(command: string, commandArgs: string[], childEnv: Record<string, string | undefined>): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, commandArgs, { stdio: "inherit", env: childEnv });
    const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
    const handlers = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((signal) => [signal, forward(signal)] as const);
    for (const [signal, handler] of handlers) process.on(signal, handler);
    const done = (code: number) => {
      for (const [signal, handler] of handlers) process.off(signal, handler);
      resolve(code);
    };
    child.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") {
        warn(`command not found: ${command}`);
        done(EXIT.COMMAND_NOT_FOUND);
      } else {
        warn(`cannot run ${command} (${error.code ?? "error"})`);
        done(EXIT.COMMAND_NOT_EXECUTABLE);
      }
    });
    child.on("exit", (code, signal) => {
      if (signal) done(128 + (constants.signals[signal] ?? 0));
      else done(code ?? 1);
    });
  });
}

function usageChecked<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof KeyferryError) throw new CliError(error.message);
    throw error;
  }
}
