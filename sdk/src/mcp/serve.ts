// `keyferry mcp`: the Model Context Protocol over stdio (stdout carries only protocol messages;
// anything for a human goes to stderr). Configured like the other commands.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { ParsedArgs } from "../cli/args";
import { clientFrom, type Env } from "../cli/config";
import { EXIT } from "../cli/exit-codes";
import { registerTools } from "./tools";

/** One wait_for_credential call answers "still pending" after this long (clients commonly cut calls at 60 s). */
const WAIT_SLICE_MS = 45_000;
const PROGRESS_EVERY_MS = 5_000;

export async function serveMcp(args: ParsedArgs, env: Env, version: string): Promise<number> {
  const ferry = clientFrom(args, env, (line) => process.stderr.write(`keyferry: ${line}\n`), true);
  const waitSeconds = Number(env.KEYFERRY_MCP_WAIT_SECONDS);
  const mcp = new McpServer(
    { name: "keyferry", version },
    {
      instructions:
        "Keyferry hands credentials (API keys, tokens) from the user to this machine without showing them to the model. " +
        "Use request_credential when a task needs one, then run_with_credentials (if offered) to use it.",
    },
  );
  registerTools(mcp, ferry, {
    allowRun: args.allowRun,
    env,
    waitSliceMs: Number.isInteger(waitSeconds) && waitSeconds > 0 ? waitSeconds * 1000 : WAIT_SLICE_MS,
    progressEveryMs: PROGRESS_EVERY_MS,
    now: () => Date.now(),
  });

  const closed = new Promise<void>((resolve) => {
    mcp.server.onclose = resolve;
  });
  const transport = new StdioServerTransport();
  // The client closing our stdin ends the session (the stdio transport does not watch for it itself).
  process.stdin.once("end", () => void mcp.close());
  await mcp.connect(transport);
  await closed;
  // Waits still sleeping and children still running must not keep a closed server alive.
  setTimeout(() => process.exit(EXIT.OK), 1_000).unref();
  return EXIT.OK;
}
