// The tools of `keyferry mcp`, exactly as sdk/README.md, "MCP server: keyferry mcp" names them.
// Input schemas are strict: an unknown argument is a tool error, not silently dropped.
import type { McpServer } from "@modelcontextprotocol/server";
import { z } from "zod";
import type { KeyferryClient } from "../client";
import { VAULT_KEY_PATTERN } from "../../../core/limits";
import type { credentialTools } from "./credentials";
import { guarded, toolResult } from "./results";
import { runWithCredentials, type KnownSecrets } from "./run";

const vaultKey = z
  .string()
  .regex(VAULT_KEY_PATTERN, "vault_key must be 1-128 characters of A-Z, a-z, 0-9, '.', '_', '-', starting with a letter or digit")
  .describe("The vault key name the credential is stored under, e.g. openai-api-key");
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface ToolOptions {
  /** Offer run_with_credentials, redacting these. */
  run: KnownSecrets | undefined;
  /** The environment a run_with_credentials command starts from (KEYFERRY_* removed). */
  env: Record<string, string | undefined>;
}

/** Registers the tools on one server instance; `credentials` (the pending requests) outlives it. */
export function registerTools(mcp: McpServer, ferry: KeyferryClient, credentials: ReturnType<typeof credentialTools>, options: ToolOptions): void {
  mcp.registerTool(
    "request_credential",
    {
      title: "Ask the user for a credential",
      description:
        "Asks the user (the operator) for a credential, such as an API key, through Keyferry. The user approves in a browser " +
        "and the credential goes end-to-end encrypted into this machine's vault under vault_key; it is never shown to you. " +
        "If the result says the request is pending, relay the URL, code and fingerprint to the user, then call wait_for_credential.",
      inputSchema: z.strictObject({ description: z.string().min(1).max(200).describe("What is asked for, shown to the user"), vault_key: vaultKey }),
      annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: true },
    },
    (input, context) => guarded(() => credentials.request(input, context)),
  );

  mcp.registerTool(
    "wait_for_credential",
    {
      title: "Wait for the user's approval",
      description:
        "Waits (for a bounded time, with progress) for the user to approve the pending request for vault_key made by " +
        "request_credential, and stores the credential in the vault. If it answers that it is still pending, call it again.",
      inputSchema: z.strictObject({ vault_key: vaultKey }),
      annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: true },
    },
    (input, context) => guarded(() => credentials.wait(input, context)),
  );

  mcp.registerTool(
    "list_credentials",
    {
      title: "List stored credentials",
      description: "Lists the vault key names of the stored credentials and when each was last updated (never the values).",
      inputSchema: z.strictObject({}),
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    (_input, context) =>
      guarded(async () => {
        const items = (await ferry.vault.list({ signal: context.mcpReq.signal })).map((item) => ({ vault_key: item.vaultKey, updated_at: item.updatedAt }));
        const text = items.length === 0 ? "The vault is empty." : items.map((item) => `${item.vault_key}\t${item.updated_at}`).join("\n");
        return toolResult(text, { items });
      }),
  );

  const known = options.run;
  if (!known) return;
  mcp.registerTool(
    "run_with_credentials",
    {
      title: "Run a command with credentials",
      description:
        "Runs a command (an argv array, no shell) with vault credentials in its environment, e.g. " +
        '{"command": ["gh", "repo", "list"], "secrets": {"GH_TOKEN": "github-token"}}. Returns the exit code and output, ' +
        "with every secret value replaced by [redacted:<vault_key>].",
      inputSchema: z.strictObject({
        command: z.array(z.string()).min(1).describe("The program and its arguments"),
        secrets: z
          .record(z.string().regex(ENV_NAME, "secrets keys must be environment variable names"), vaultKey)
          .describe("Environment variable name -> vault key"),
      }),
      annotations: { readOnlyHint: false, destructiveHint: true, openWorldHint: true },
    },
    (input, context) => guarded(() => runWithCredentials(ferry, known, input, options.env, context.mcpReq.signal)),
  );
}
