// With --allow-run the model picks commands, and they run as the agent's own user: on Linux such a
// command can read /proc/$PPID/environ and /proc/$PPID/cmdline, which keep the environment and
// arguments this process was *started* with (editing process.env changes neither). So
// `keyferry mcp --allow-run` started with the API key in its environment (or as --api-key) replaces
// itself (execve: same pid, same stdio) with a copy started without it, and hands the key over in a
// file of mode 0600 in a fresh folder of mode 0700, which the new image reads and deletes before it
// serves anything.
//
// This closes the trivial read, not the user boundary: what the agent's user can read (the MCP
// client's own config and environment, the seed file), the command can read too.
import { mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Env } from "../cli/config";

/** The environment variable naming the handoff file; set only by reexecWithoutApiKey. */
const HANDOFF = "KEYFERRY_MCP_KEY_HANDOFF";
const API_KEY = "KEYFERRY_API_KEY";

/**
 * Re-executes this process without the API key in its environment or arguments, when it has one
 * there. Returns only when nothing needs hiding, or when the platform cannot re-exec (`false`:
 * Windows, where a process's environment is not readable this way; Node without process.execve).
 */
export function reexecWithoutApiKey(env: Env, argv: string[]): boolean {
  const flagged = apiKeyFlag(argv);
  const apiKey = flagged?.value ?? env[API_KEY];
  if (!apiKey || env[HANDOFF]) return true;
  if (typeof process.execve !== "function") return false;

  const folder = mkdtempSync(join(tmpdir(), "keyferry-mcp-"));
  const file = join(folder, "api-key");
  writeFileSync(file, apiKey, { mode: 0o600, flag: "wx" });
  const cleanEnv: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (name !== API_KEY && value !== undefined) cleanEnv[name] = value;
  cleanEnv[HANDOFF] = file;
  const cleanArgv = flagged ? [...argv.slice(0, flagged.index), ...argv.slice(flagged.index + flagged.length)] : argv;
  try {
    process.execve(process.execPath, [process.execPath, ...process.execArgv, ...cleanArgv], cleanEnv);
  } catch {
    rmSync(folder, { recursive: true, force: true }); // ours, just made
    return false;
  }
  return true; // not reached: execve replaced this process
}

/** In the re-executed image: the environment with the handed-over key, the file and its folder gone. */
export function takeHandedOffKey(env: Env): Env {
  const file = env[HANDOFF];
  if (!file) return env;
  const { [HANDOFF]: _handoff, ...rest } = env;
  delete process.env[HANDOFF];
  try {
    return { ...rest, [API_KEY]: readFileSync(file, "utf8") };
  } finally {
    // The file, then its folder only if now empty: never more than reexecWithoutApiKey made.
    rmSync(file, { force: true });
    try {
      rmdirSync(dirname(file));
    } catch {
      // not empty, or gone: leave it
    }
  }
}

/** Where `--api-key KEY` / `--api-key=KEY` sits in argv (script path first, as in process.argv.slice(1)). */
function apiKeyFlag(argv: string[]): { index: number; length: number; value: string } | undefined {
  const end = argv.indexOf("--");
  for (let i = 0; i < (end === -1 ? argv.length : end); i++) {
    const arg = argv[i]!;
    if (arg === "--api-key" && i + 1 < argv.length) return { index: i, length: 2, value: argv[i + 1]! };
    if (arg.startsWith("--api-key=")) return { index: i, length: 1, value: arg.slice("--api-key=".length) };
  }
  return undefined;
}
