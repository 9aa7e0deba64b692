import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { createClient, type KeyferryClient } from "../client";
import { KeyferryError } from "../errors";
import { generateMasterSeed, parseMasterSeed } from "../master-seed";
import type { ParsedArgs } from "./args";
import { CliError } from "./usage-error";

export type Env = Record<string, string | undefined>;

export function seedFilePath(args: ParsedArgs, env: Env): string {
  const explicit = args.seedFile ?? env.KEYFERRY_SEED_FILE;
  if (explicit !== undefined && explicit !== "") return explicit;
  const home = env.HOME || homedir();
  return join(home, ".config", "keyferry", "seed");
}

/** A client from flags and environment; `withSeed` also reads the master seed file. */
export function clientFrom(args: ParsedArgs, env: Env, warn: (line: string) => void, withSeed: boolean): KeyferryClient {
  return configuredClient(args, env, warn, withSeed).client;
}

/** The client and the secrets it was made with (`keyferry mcp` redacts them from command output). */
export function configuredClient(
  args: ParsedArgs,
  env: Env,
  warn: (line: string) => void,
  withSeed: boolean,
): { client: KeyferryClient; apiKey: string; masterSeed: Uint8Array | undefined } {
  const baseUrl = args.url ?? env.KEYFERRY_URL;
  if (!baseUrl) throw new CliError("no server: pass --url or set KEYFERRY_URL");
  const apiKey = args.apiKey ?? env.KEYFERRY_API_KEY;
  if (!apiKey) throw new CliError("no API key: set KEYFERRY_API_KEY (or pass --api-key)");
  const masterSeed = withSeed ? readSeed(seedFilePath(args, env), warn) : undefined;
  try {
    return { client: createClient({ baseUrl, apiKey, ...(masterSeed ? { masterSeed } : {}) }), apiKey, masterSeed };
  } catch (error) {
    if (error instanceof KeyferryError) throw new CliError(error.message);
    throw error;
  }
}

function readSeed(path: string, warn: (line: string) => void): Uint8Array {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (errno(error) === "ENOENT") throw new CliError(`no master seed at ${path}: run "keyferry init" first`);
    throw new CliError(`cannot read the master seed file ${path} (${errno(error) ?? "error"})`);
  }
  if (process.platform !== "win32" && (statSync(path).mode & 0o077) !== 0) {
    warn(`warning: ${path} is readable by other users; run: chmod 600 ${path}`);
  }
  try {
    return parseMasterSeed(text);
  } catch (error) {
    throw new CliError(`the master seed file ${path} is invalid: ${error instanceof Error ? error.message : "unreadable"}`);
  }
}

/** Creates the seed file with mode 0600 (its folder 0700). Refuses to replace one unless `force`. */
export function writeNewSeed(path: string, force: boolean): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const seed = generateMasterSeed();
  if (!force) {
    let fd: number;
    try {
      fd = openSync(path, "wx", 0o600);
    } catch (error) {
      if (errno(error) === "EEXIST") {
        throw new CliError(
          `a master seed already exists at ${path}; use --force to replace it (items encrypted with the old seed become unreadable)`,
        );
      }
      throw new CliError(`cannot create ${path} (${errno(error) ?? "error"})`);
    }
    try {
      writeSync(fd, `${seed}\n`);
    } finally {
      closeSync(fd);
    }
    chmodSync(path, 0o600);
    return;
  }
  // Replace atomically, so a crash never leaves a half-written seed.
  const temporary = `${path}.${process.pid}.tmp`;
  const fd = openSync(temporary, "wx", 0o600);
  try {
    writeSync(fd, `${seed}\n`);
  } finally {
    closeSync(fd);
  }
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
}

function errno(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error ? String((error as { code: unknown }).code) : undefined;
}
