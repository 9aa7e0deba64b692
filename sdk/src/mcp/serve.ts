// `keyferry mcp`: the Model Context Protocol over stdio (stdout carries only protocol messages;
// anything for a human goes to stderr). Configured like the other commands.
//
// One process serves both protocol eras (the official v2 SDK's serveStdio): a client that opens with
// `initialize` gets MCP 2025-11-25, one that opens with `server/discover` (or any request carrying the
// per-request `_meta` envelope) gets 2026-07-28. The factory can be called more than once (an opening
// probe is discarded), so the state that must outlive an instance (pending requests, the requestState
// key) is made once, here.
import { McpServer } from "@modelcontextprotocol/server";
import { serveStdio } from "@modelcontextprotocol/server/stdio";
import type { ParsedArgs } from "../cli/args";
import { configuredClient, type Env } from "../cli/config";
import { EXIT } from "../cli/exit-codes";
import { credentialTools } from "./credentials";
import { reexecWithoutApiKey, takeHandedOffKey } from "./key-handoff";
import { KnownSecrets } from "./run";
import { registerTools } from "./tools";

/** One wait_for_credential call answers "still pending" after this long (clients commonly cut calls at 60 s). */
const WAIT_SLICE_MS = 45_000;
const PROGRESS_EVERY_MS = 5_000;

export async function serveMcp(args: ParsedArgs, startEnv: Env, version: string): Promise<number> {
  const warn = (line: string) => process.stderr.write(`keyferry: ${line}\n`);
  if (args.allowRun && !reexecWithoutApiKey(startEnv, process.argv.slice(1))) {
    warn("warning: cannot re-execute without the API key here; commands run by run_with_credentials can read it from this process's environment");
  }
  const env = takeHandedOffKey(startEnv);
  const { client: ferry, apiKey, masterSeed } = configuredClient(args, env, warn, true);
  const waitSeconds = Number(env.KEYFERRY_MCP_WAIT_SECONDS);
  let latest: McpServer | undefined;
  const credentials = credentialTools(ferry, {
    waitSliceMs: Number.isInteger(waitSeconds) && waitSeconds > 0 ? waitSeconds * 1000 : WAIT_SLICE_MS,
    progressEveryMs: PROGRESS_EVERY_MS,
    elicitation: args.elicitation,
    legacyCapabilities: () => latest?.server.getClientCapabilities(),
    now: () => Date.now(),
  });
  const run = args.allowRun ? new KnownSecrets(ferry, apiKey, masterSeed) : undefined;
  const childEnv: Env = {};
  for (const [name, value] of Object.entries(env)) if (!name.startsWith("KEYFERRY_")) childEnv[name] = value;

  const closed = new Promise<void>((resolve) => {
    // The client closing our stdin ends the session.
    process.stdin.once("end", resolve);
    process.stdin.once("close", resolve);
  });
  const handle = serveStdio(() => {
    latest = new McpServer(
      { name: "keyferry", version },
      {
        instructions:
          "Keyferry hands credentials (API keys, tokens) from the user to this machine without showing them to the model. " +
          "Use request_credential when a task needs one, then run_with_credentials (if offered) to use it.",
      },
    );
    registerTools(latest, ferry, credentials, { run, env: childEnv });
    return latest;
  });
  await closed;
  await handle.close().catch(() => undefined);
  // Waits still sleeping and children still running must not keep a closed server alive.
  setTimeout(() => process.exit(EXIT.OK), 1_000).unref();
  return EXIT.OK;
}
