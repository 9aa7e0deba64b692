import { parseArgs } from "node:util";
import { ELICITATION_MODES, type ElicitationMode } from "../mcp/elicitation";
import { CliError } from "./usage-error";

export type CommandName = "init" | "request" | "get" | "list" | "delete" | "run" | "mcp";

export interface ParsedArgs {
  command: CommandName | undefined;
  /** Positionals after the command name. */
  positionals: string[];
  /** `run`: the command line after `--`. */
  commandLine: string[];
  help: boolean;
  version: boolean;
  url: string | undefined;
  apiKey: string | undefined;
  seedFile: string | undefined;
  force: boolean;
  description: string | undefined;
  vaultKey: string | undefined;
  timeout: string | undefined;
  noE2e: boolean;
  noQr: boolean;
  secrets: string[];
  /** `mcp`: offer the `run_with_credentials` tool. */
  allowRun: boolean;
  /** `mcp`: when to show the approval URL by elicitation (default `auto`: when the client declares it). */
  elicitation: ElicitationMode;
}

const OPTIONS = {
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
  url: { type: "string" },
  "api-key": { type: "string" },
  "seed-file": { type: "string" },
  force: { type: "boolean" },
  description: { type: "string" },
  "vault-key": { type: "string" },
  timeout: { type: "string" },
  "no-e2e": { type: "boolean" },
  "no-qr": { type: "boolean" },
  secret: { type: "string", multiple: true },
  "allow-run": { type: "boolean" },
  elicitation: { type: "string" },
} as const;

type OptionName = keyof typeof OPTIONS;
const GLOBAL: OptionName[] = ["help", "version", "url", "api-key", "seed-file"];
const PER_COMMAND: Record<CommandName, { options: OptionName[]; positionals: number }> = {
  init: { options: ["force"], positionals: 0 },
  request: { options: ["description", "vault-key", "timeout", "no-e2e", "no-qr"], positionals: 0 },
  get: { options: [], positionals: 1 },
  list: { options: [], positionals: 0 },
  delete: { options: [], positionals: 1 },
  run: { options: ["secret"], positionals: 0 },
  mcp: { options: ["allow-run", "elicitation"], positionals: 0 },
};

/** Parses `keyferry [options] <command> [options] [-- command line]`. Throws `CliError` (exit 1). */
export function parseCliArgs(argv: string[]): ParsedArgs {
  const split = argv.indexOf("--");
  const own = split === -1 ? argv : argv.slice(0, split);
  const commandLine = split === -1 ? [] : argv.slice(split + 1);

  let values: Record<string, string | boolean | string[] | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: own, options: OPTIONS, allowPositionals: true, strict: true }));
  } catch (error) {
    throw new CliError(`${error instanceof Error ? firstLine(error.message) : "invalid arguments"} (see keyferry --help)`);
  }

  const [first, ...rest] = positionals;
  const help = values.help === true;
  const version = values.version === true;
  if (first === undefined) {
    if (!help && !version) throw new CliError("no command given (see keyferry --help)");
  } else if (!(first in PER_COMMAND)) {
    throw new CliError(`unknown command "${first}" (see keyferry --help)`);
  }
  const command = first as CommandName | undefined;

  if (command && !help) {
    const spec = PER_COMMAND[command];
    for (const name of Object.keys(values) as OptionName[]) {
      if (!GLOBAL.includes(name) && !spec.options.includes(name)) throw new CliError(`option --${name} does not apply to "${command}"`);
    }
    if (rest.length !== spec.positionals) {
      throw new CliError(
        spec.positionals === 0 ? `"${command}" takes no arguments: ${rest.join(" ")}` : `"${command}" takes exactly one vault key name`,
      );
    }
    if (commandLine.length > 0 && command !== "run") throw new CliError(`"--" is only for "run"`);
  }
  const elicitation = (values.elicitation as string | undefined) ?? "auto";
  if (!(ELICITATION_MODES as readonly string[]).includes(elicitation)) {
    throw new CliError(`--elicitation must be one of ${ELICITATION_MODES.join(", ")}`);
  }

  return {
    command,
    positionals: rest,
    commandLine,
    help,
    version,
    url: values.url as string | undefined,
    apiKey: values["api-key"] as string | undefined,
    seedFile: values["seed-file"] as string | undefined,
    force: values.force === true,
    description: values.description as string | undefined,
    vaultKey: values["vault-key"] as string | undefined,
    timeout: values.timeout as string | undefined,
    noE2e: values["no-e2e"] === true,
    noQr: values["no-qr"] === true,
    secrets: (values.secret as string[] | undefined) ?? [],
    allowRun: values["allow-run"] === true,
    elicitation: elicitation as ElicitationMode,
  };
}

function firstLine(text: string): string {
  return text.split("\n")[0]!.replace(/\. To specify a positional argument.*$/, "");
}
