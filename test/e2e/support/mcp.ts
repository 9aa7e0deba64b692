// An MCP client (the official SDKs': v1 speaking 2025-11-25, v2 pinned to 2026-07-28) driving
// `keyferry mcp` from the installed package over stdio, recording every message the server sends
// (from the first byte: the recorder is in place before the client connects) and everything it
// writes to stderr.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Client as ModernClient } from "@modelcontextprotocol/client";
import { StdioClientTransport as ModernStdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { Client as LegacyClient } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport as LegacyStdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult, Progress } from "@modelcontextprotocol/sdk/types.js";
import { CallToolResultSchema, ElicitationCompleteNotificationSchema, ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import type { Browser, Page } from "playwright-core";
import { expect } from "vitest";

const run = promisify(execFile);

export type Era = "2025-11-25" | "2026-07-28";

/** A URL elicitation as either era carries it (2026-07-28 has no elicitationId). */
export interface UrlElicitationParams {
  mode?: "url";
  message: string;
  url: string;
  elicitationId?: string;
}

export interface McpSession {
  era: Era;
  /** Every JSON-RPC message the server sent, serialized. */
  received: string[];
  stderr(): string;
  elicitations: UrlElicitationParams[];
  completed: string[];
  /** Whether the server process is still running. */
  alive(): boolean;
  listTools(): Promise<string[]>;
  ping(): Promise<void>;
  call(name: string, args: Record<string, unknown>, options?: CallOptions): Promise<ToolResult>;
  close(): Promise<void>;
}

export interface CallOptions {
  signal?: AbortSignal;
  onprogress?: (progress: Progress) => void;
  /** 2026-07-28, manual multi-round-trip: the retry's requestState and inputResponses. */
  requestState?: string;
  inputResponses?: Record<string, unknown>;
  /** 2026-07-28: hand an input_required answer back instead of fulfilling it (see ToolResult.inputRequired). */
  manual?: boolean;
}

export interface ToolResult {
  isError?: boolean;
  text: string;
  structured: Record<string, unknown> | undefined;
  raw: string;
  /** Set when `manual` and the server answered input_required. */
  inputRequired?: { inputRequests?: Record<string, { method: string; params: UrlElicitationParams }>; requestState?: string };
}

export interface McpOptions {
  bin: string;
  env: Record<string, string>;
  args?: string[];
  /** Default 2025-11-25 (the v1 client). */
  era?: Era;
  /** Declare `elicitation.url` and answer URL elicitations with this (default: no elicitation capability). */
  onUrlElicitation?: (params: UrlElicitationParams) => "accept" | "decline" | "cancel";
  /** Declare only form elicitation (`elicitation: {}`), as clients without URL mode do. */
  formElicitationOnly?: boolean;
}

/**
 * The v2 client probes `server/discover` on a throw-away sibling process when given its own stdio
 * transport exactly, and in place for a subclass: this one, so that the one server process under test
 * answers the discovery too, and every byte it sends is recorded.
 */
class InPlaceStdioClientTransport extends ModernStdioClientTransport {}

const CALL_OPTIONS = { timeout: 240_000, resetTimeoutOnProgress: true };

/**
 * Records each message the transport delivers, whoever installs the handler and whenever. A client
 * may read the handler and wrap it in its own (v1's Protocol.connect does): the wrapper handed out
 * calls the handler of its time, and records only at the outermost call.
 */
function recordInbound(transport: object, received: string[]): void {
  let handler: ((message: unknown, extra?: unknown) => void) | undefined;
  let delivering = false;
  Object.defineProperty(transport, "onmessage", {
    configurable: true,
    get: () => {
      const current = handler;
      return (
        current &&
        ((message: unknown, extra?: unknown) => {
          const outermost = !delivering;
          if (outermost) received.push(JSON.stringify(message));
          delivering = true;
          try {
            current(message, extra);
          } finally {
            if (outermost) delivering = false;
          }
        })
      );
    },
    set: (next: typeof handler) => (handler = next),
  });
}

function toolResult(result: CallToolResult): ToolResult {
  const text = result.content.map((part) => (part.type === "text" ? part.text : "")).join("\n");
  return { isError: result.isError, text, structured: result.structuredContent, raw: JSON.stringify(result) };
}

export async function startMcp(options: McpOptions): Promise<McpSession> {
  const era = options.era ?? "2025-11-25";
  const parameters = { command: options.bin, args: ["mcp", ...(options.args ?? [])], env: { PATH: process.env.PATH ?? "", ...options.env }, stderr: "pipe" as const };
  const name = options.onUrlElicitation ? "test-url-elicitation-client" : "test-plain-client";
  const capabilities: { elicitation?: { url?: Record<string, never> } } = options.onUrlElicitation
    ? { elicitation: { url: {} } }
    : options.formElicitationOnly
      ? { elicitation: {} }
      : {};
  const elicitations: UrlElicitationParams[] = [];
  const completed: string[] = [];
  const received: string[] = [];
  let stderr = "";
  let exited = false;
  const answer = (params: UrlElicitationParams) => {
    if (params.mode !== undefined && params.mode !== "url") throw new Error(`unexpected elicitation mode ${params.mode}`);
    elicitations.push(params);
    return { action: options.onUrlElicitation?.(params) ?? ("decline" as const) };
  };
  const base = {
    era,
    received,
    stderr: () => stderr,
    elicitations,
    completed,
  };

  if (era === "2025-11-25") {
    const transport = new LegacyStdioClientTransport(parameters);
    transport.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    recordInbound(transport, received);
    const client = new LegacyClient({ name, version: "1.0.0" }, { capabilities });
    if (options.onUrlElicitation || options.formElicitationOnly) {
      client.setRequestHandler(ElicitRequestSchema, async (request) => answer(request.params as UrlElicitationParams));
      client.setNotificationHandler(ElicitationCompleteNotificationSchema, (notification) => {
        completed.push(notification.params.elicitationId);
      });
    }
    transport.onclose = () => (exited = true);
    await client.connect(transport);
    return {
      ...base,
      alive: () => !exited && transport.pid !== null,
      listTools: async () => (await client.listTools()).tools.map((tool) => tool.name).sort(),
      ping: async () => void (await client.ping()),
      async call(tool, args, callOptions = {}) {
        const result = (await client.callTool({ name: tool, arguments: args }, CallToolResultSchema, {
          ...CALL_OPTIONS,
          ...(callOptions.signal ? { signal: callOptions.signal } : {}),
          ...(callOptions.onprogress ? { onprogress: callOptions.onprogress } : {}),
        })) as CallToolResult;
        return toolResult(result);
      },
      close: () => client.close(),
    };
  }

  const transport = new InPlaceStdioClientTransport(parameters);
  (transport.stderr as NodeJS.ReadableStream | null)?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  recordInbound(transport, received);
  const client = new ModernClient({ name, version: "1.0.0" }, { capabilities, versionNegotiation: { mode: { pin: "2026-07-28" } } });
  if (options.onUrlElicitation || options.formElicitationOnly) {
    client.setRequestHandler("elicitation/create", async (request) => answer(request.params as UrlElicitationParams));
  }
  await client.connect(transport);
  transport.onclose = () => (exited = true);
  return {
    ...base,
    alive: () => !exited && transport.pid !== null,
    listTools: async () => (await client.listTools()).tools.map((tool) => tool.name).sort(),
    // 2026-07-28 has no ping: any answered request shows the server is there.
    ping: async () => void (await client.listTools()),
    async call(tool, args, callOptions = {}) {
      const params = {
        name: tool,
        arguments: args,
        ...(callOptions.requestState !== undefined ? { requestState: callOptions.requestState } : {}),
        ...(callOptions.inputResponses !== undefined ? { inputResponses: callOptions.inputResponses } : {}),
      };
      const result: unknown = await client.callTool(params, {
        ...CALL_OPTIONS,
        ...(callOptions.manual ? { allowInputRequired: true } : {}),
        ...(callOptions.signal ? { signal: callOptions.signal } : {}),
        ...(callOptions.onprogress ? { onprogress: callOptions.onprogress } : {}),
      });
      const shaped = result as { resultType?: string } & Partial<CallToolResult> & ToolResult["inputRequired"];
      if (shaped.resultType === "input_required") {
        return { text: "", structured: undefined, raw: JSON.stringify(result), inputRequired: { inputRequests: shaped.inputRequests, requestState: shaped.requestState } } as ToolResult;
      }
      return toolResult(result as CallToolResult);
    },
    close: () => client.close(),
  };
}

/** A key fingerprint as the approval page and the agent show it. */
export const FINGERPRINT = /[A-Z2-7]{4}(?:-[A-Z2-7]{4}){3}/;

/** Each form of a secret that redaction must catch and that no byte from the server may carry. */
export function secretForms(secret: string | Uint8Array): string[] {
  const bytes = Buffer.from(secret);
  const base64 = bytes.toString("base64");
  const hex = bytes.toString("hex");
  const text = typeof secret === "string" ? [secret, encodeURIComponent(secret)] : [];
  return [...text, base64, base64.replace(/=+$/, ""), bytes.toString("base64url"), hex, hex.toUpperCase()];
}

/** The sentinel scan: no form of any secret in any message the server sent or on its stderr. */
export function expectNoSecret(session: McpSession, secrets: Array<string | Uint8Array>): void {
  const bytes = `${session.received.join("\n")}\n${session.stderr()}`;
  for (const secret of secrets) for (const form of secretForms(secret)) expect(bytes.includes(form), `a form of a secret (${session.era})`).toBe(false);
}

/** The installed `keyferry` bin with exactly `env` (plus PATH). */
export async function keyferryCli(bin: string, args: string[], env: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  return run(bin, args, { env: { PATH: process.env.PATH ?? "", ...env } });
}

/** The operator approves on the real page: email (if the page asks), fingerprint check, value, Approve. */
export async function approveOnPage(page: Page, url: string, email: string, fingerprint: string | null, secret: string): Promise<void> {
  const eventually = <T>(read: () => T | Promise<T>) => expect.poll(read, { timeout: 30_000, interval: 100 });
  await page.goto(url);
  const emailField = page.getByLabel("Email");
  const fingerprintShown = page.locator("#fingerprint");
  await eventually(async () => (await emailField.isVisible()) || (await fingerprintShown.isVisible())).toBe(true);
  if (await emailField.isVisible()) {
    await emailField.fill(email);
    await page.getByRole("button", { name: "Continue" }).click();
  }
  await eventually(() => fingerprintShown.textContent()).toBe(fingerprint);
  await page.getByLabel("Credential").fill(secret);
  await page.getByRole("button", { name: "Approve" }).click();
  await eventually(() => page.getByRole("heading", { name: "Approved" }).isVisible()).toBe(true);
}

/** The operator approves in a browser context of their own, which is closed afterwards. */
export async function approveInFreshContext(browser: Browser, url: string, email: string, fingerprint: string | null, secret: string): Promise<void> {
  const context = await browser.newContext();
  try {
    await approveOnPage(await context.newPage(), url, email, fingerprint, secret);
  } finally {
    await context.close();
  }
}

/** Calls `wait_for_credential` (one bounded slice each) until it reports something other than pending. */
export async function waitUntilSettled(session: McpSession, vaultKey: string): Promise<ToolResult> {
  let result = await session.call("wait_for_credential", { vault_key: vaultKey });
  for (let slice = 0; result.structured?.status === "pending" && slice < 10; slice++) {
    result = await session.call("wait_for_credential", { vault_key: vaultKey });
  }
  return result;
}
