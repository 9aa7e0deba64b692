// `run_with_credentials` (only with `keyferry mcp --allow-run`): runs a command (no shell) with vault
// items in its environment and returns its exit code and output, bounded in time and size, with the
// API key, the master seed and every vault value redacted (./redact.ts).
//
// The model picks the command, and it runs as the agent's own user: it can read whatever that user
// can (the seed file, the MCP client's config), and a transformed value passes the redaction. The
// API key is kept out of this process's startup environment (./key-handoff.ts) and the child's
// environment holds only the secrets asked for; the rest is the user boundary, not ours to enforce.
import { spawn } from "node:child_process";
import type { CallToolResult } from "@modelcontextprotocol/server";
import type { KeyferryClient } from "../client";
import { KeyferryError } from "../errors";
import { createRedactor, type Secret } from "./redact";
import { toolError, toolResult } from "./results";

/** Wall-clock limit for one command; then SIGTERM, and SIGKILL after the grace. */
export const RUN_TIMEOUT_MS = 120_000;
const KILL_GRACE_MS = 2_000;
/** Bytes of stdout and of stderr kept for the model; the rest is read and dropped. */
export const MAX_OUTPUT_BYTES = 64 * 1024;

export interface RunInput {
  command: string[];
  secrets: Record<string, string>;
}

interface Captured {
  text: string;
  truncated: boolean;
}

export async function runWithCredentials(
  ferry: KeyferryClient,
  known: KnownSecrets,
  input: RunInput,
  baseEnv: Record<string, string | undefined>,
  signal: AbortSignal,
): Promise<CallToolResult> {
  const [command, ...args] = input.command;
  if (command === undefined || command === "") return toolError("command must name a program: [\"program\", \"arg\", ...]");
  const wanted = Object.entries(input.secrets);
  const values: string[] = [];
  for (const [, vaultKey] of wanted) {
    try {
      values.push(await ferry.vault.get(vaultKey, { signal }));
    } catch (error) {
      if (error instanceof KeyferryError && error.code === "NOT_FOUND") {
        return toolError(`vault key "${vaultKey}" does not exist (list_credentials shows what is stored; request_credential asks for it)`);
      }
      throw error;
    }
  }
  // Every value this process could know, not only the ones asked for: a command can read other items
  // (keyferry get) or this server's own key and seed. No secrets known, no run.
  const redactor = createRedactor([...wanted.map(([, vaultKey], i) => ({ label: vaultKey, value: values[i]! })), ...(await known.all(signal))]);

  // The model picks the command: it gets the named secrets, not this server's own API key or seed path.
  const env: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(baseEnv)) if (!name.startsWith("KEYFERRY_")) env[name] = value;
  wanted.forEach(([name], i) => (env[name] = values[i]));

  const outcome = await spawnBounded(command, args, env, signal);
  if (outcome.kind === "spawn-error") {
    return outcome.code === "ENOENT" ? toolError(`command not found: ${command}`) : toolError(`cannot run ${command} (${outcome.code})`);
  }
  const clean = (captured: Captured) => (captured.truncated ? redactor.redactTruncated(captured.text) : redactor.redact(captured.text));
  const stdout = clean(outcome.stdout);
  const stderr = clean(outcome.stderr);
  const structured = {
    exit_code: outcome.exitCode,
    signal: outcome.signal,
    timed_out: outcome.timedOut,
    stdout,
    stderr,
    stdout_truncated: outcome.stdout.truncated,
    stderr_truncated: outcome.stderr.truncated,
  };
  const status = outcome.timedOut
    ? `timed out after ${RUN_TIMEOUT_MS / 1000} s and was killed`
    : outcome.signal
      ? `killed by ${outcome.signal}`
      : `exit code ${outcome.exitCode}`;
  const cut = (c: Captured) => (c.truncated ? `\n[output cut at ${MAX_OUTPUT_BYTES} bytes]` : "");
  const text = `${status}\n--- stdout ---\n${stdout}${cut(outcome.stdout)}\n--- stderr ---\n${stderr}${cut(outcome.stderr)}`;
  return outcome.timedOut ? toolError(text, structured) : toolResult(text, structured);
}

type SpawnOutcome =
  | { kind: "spawn-error"; code: string }
  | { kind: "exited"; exitCode: number | null; signal: string | null; timedOut: boolean; stdout: Captured; stderr: Captured };

function spawnBounded(command: string, args: string[], env: Record<string, string | undefined>, signal: AbortSignal): Promise<SpawnOutcome> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { shell: false, env, stdio: ["ignore", "pipe", "pipe"] });
    const stdout = capture(child.stdout);
    const stderr = capture(child.stderr);
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      child.kill("SIGTERM");
      killTimer ??= setTimeout(() => child.kill("SIGKILL"), KILL_GRACE_MS);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, RUN_TIMEOUT_MS);
    signal.addEventListener("abort", stop, { once: true });
    const finish = (outcome: SpawnOutcome) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      signal.removeEventListener("abort", stop);
      resolve(outcome);
    };
    child.once("error", (error: NodeJS.ErrnoException) => finish({ kind: "spawn-error", code: error.code ?? "error" }));
    child.once("close", (exitCode, exitSignal) =>
      finish({ kind: "exited", exitCode, signal: exitSignal, timedOut, stdout: stdout(), stderr: stderr() }),
    );
  });
}

/** Keeps the first MAX_OUTPUT_BYTES of a stream, reading (and dropping) the rest so the child never blocks. */
function capture(stream: NodeJS.ReadableStream): () => Captured {
  const chunks: Buffer[] = [];
  let kept = 0;
  let truncated = false;
  stream.on("data", (chunk: Buffer) => {
    if (kept >= MAX_OUTPUT_BYTES) {
      truncated = true;
      return;
    }
    const part = chunk.subarray(0, MAX_OUTPUT_BYTES - kept);
    if (part.length < chunk.length) truncated = true;
    chunks.push(part);
    kept += part.length;
  });
  return () => ({ text: Buffer.concat(chunks).toString("utf8"), truncated });
}

/**
 * The API key, the master seed and every vault value, for redaction. Vault values are cached by
 * name and `updatedAt`, so a run fetches only what changed since the last one.
 */
export class KnownSecrets {
  readonly #ferry: KeyferryClient;
  readonly #fixed: Secret[];
  readonly #vault = new Map<string, { updatedAt: string; value: string }>();

  constructor(ferry: KeyferryClient, apiKey: string, masterSeed: Uint8Array | undefined) {
    this.#ferry = ferry;
    this.#fixed = [{ label: "api-key", value: apiKey }, ...(masterSeed ? [{ label: "master-seed", value: masterSeed }] : [])];
  }

  async all(signal: AbortSignal): Promise<Secret[]> {
    for (const { vaultKey, updatedAt } of await this.#ferry.vault.list({ signal })) {
      if (this.#vault.get(vaultKey)?.updatedAt === updatedAt) continue;
      try {
        this.#vault.set(vaultKey, { updatedAt, value: await this.#ferry.vault.get(vaultKey, { signal }) });
      } catch (error) {
        // Deleted meanwhile, or sealed under another seed: this process cannot know its value either.
        if (!(error instanceof KeyferryError && (error.code === "NOT_FOUND" || error.code === "DECRYPTION_FAILED" || error.code === "VAULT_KEY_MISMATCH"))) throw error;
      }
    }
    // Deleted items stay: their value may still sit in a file a command prints.
    return [...this.#fixed, ...[...this.#vault].map(([label, { value }]) => ({ label, value }))];
  }
}
