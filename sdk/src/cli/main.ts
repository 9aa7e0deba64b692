import { KeyferryError } from "../errors";
import { parseCliArgs, type CommandName, type ParsedArgs } from "./args";
import { serveMcp } from "../mcp/serve";
import * as commands from "./commands";
import type { Env } from "./config";
import { EXIT, exitCodeFor } from "./exit-codes";
import { HELP } from "./help";
import { CliError } from "./usage-error";

declare const KEYFERRY_VERSION: string | undefined;
const VERSION = typeof KEYFERRY_VERSION === "string" ? KEYFERRY_VERSION : "dev";

/** Runs the CLI; resolves to the exit code. Errors are one line on stderr, never a stack or a secret. */
export async function main(argv: string[], env: Env): Promise<number> {
  const controller = new AbortController();
  const onInterrupt = () => controller.abort();
  try {
    const args = parseCliArgs(argv);
    if (args.help) {
      process.stdout.write(HELP);
      return EXIT.OK;
    }
    if (args.version) {
      process.stdout.write(`${VERSION}\n`);
      return EXIT.OK;
    }
    const command = args.command as CommandName;
    if (command === "request") process.once("SIGINT", onInterrupt);
    return await dispatch(command, args, env, controller.signal);
  } catch (error) {
    return report(error);
  } finally {
    process.off("SIGINT", onInterrupt);
  }
}

function dispatch(command: CommandName, args: ParsedArgs, env: Env, signal: AbortSignal): Promise<number> {
  switch (command) {
    case "init":
      return commands.init(args, env);
    case "request":
      return commands.request(args, env, signal);
    case "get":
      return commands.get(args, env);
    case "list":
      return commands.list(args, env);
    case "delete":
      return commands.remove(args, env);
    case "run":
      return commands.run(args, env);
    case "mcp":
      return serveMcp(args, env, VERSION);
  }
}

function report(error: unknown): number {
  if (error instanceof CliError) {
    process.stderr.write(`keyferry: ${error.message}\n`);
    return error.exitCode;
  }
  if (error instanceof KeyferryError) {
    const message = error.code === "ABORTED" ? "interrupted" : error.message;
    process.stderr.write(`keyferry: ${message}\n`);
    return exitCodeFor(error.code);
  }
  // A bug: say what kind, but print no message or stack that could carry a value.
  const kind = error instanceof Error ? error.name : typeof error;
  process.stderr.write(`keyferry: unexpected internal error (${kind})\n`);
  return EXIT.INTERNAL;
}
