// An MCP client (the official SDK's) driving `keyferry mcp` from the installed package over stdio,
// recording every message the server sends and everything it writes to stderr.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult, Progress } from "@modelcontextprotocol/sdk/types.js";
import { CallToolResultSchema, ElicitationCompleteNotificationSchema, ElicitRequestSchema, type ElicitRequestURLParams } from "@modelcontextprotocol/sdk/types.js";
import type { Page } from "playwright-core";
import { expect } from "vitest";

const run = promisify(execFile);

export interface McpSession {
  client: Client;
  /** Every JSON-RPC message the server sent, serialized. */
  received: string[];
  stderr(): string;
  elicitations: ElicitRequestURLParams[];
  completed: string[];
  /** Whether the server process is still running. */
  alive(): boolean;
  call(name: string, args: Record<string, unknown>, options?: { signal?: AbortSignal; onprogress?: (progress: Progress) => void }): Promise<ToolResult>;
  close(): Promise<void>;
}

export interface ToolResult {
  isError?: boolean;
  text: string;
  structured: Record<string, unknown> | undefined;
  raw: string;
}

export interface McpOptions {
  bin: string;
  env: Record<string, string>;
  args?: string[];
  /** Declare `elicitation.url` and answer URL elicitations with this (default: no elicitation capability). */
  onUrlElicitation?: (params: ElicitRequestURLParams) => "accept" | "decline" | "cancel";
}

export async function startMcp(options: McpOptions): Promise<McpSession> {
  const transport = new StdioClientTransport({
    command: options.bin,
    args: ["mcp", ...(options.args ?? [])],
    env: { PATH: process.env.PATH ?? "", ...options.env },
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  let exited = false;
  const client = new Client(
    { name: options.onUrlElicitation ? "test-url-elicitation-client" : "test-plain-client", version: "1.0.0" },
    { capabilities: options.onUrlElicitation ? { elicitation: { url: {} } } : {} },
  );
  const elicitations: ElicitRequestURLParams[] = [];
  const completed: string[] = [];
  if (options.onUrlElicitation) {
    const answer = options.onUrlElicitation;
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      if (request.params.mode !== "url") throw new Error(`unexpected elicitation mode ${request.params.mode}`);
      elicitations.push(request.params);
      return { action: answer(request.params) };
    });
    client.setNotificationHandler(ElicitationCompleteNotificationSchema, (notification) => {
      completed.push(notification.params.elicitationId);
    });
  }
  transport.onclose = () => (exited = true);
  await client.connect(transport);
  const received: string[] = [];
  const deliver = transport.onmessage;
  transport.onmessage = (message) => {
    received.push(JSON.stringify(message));
    deliver?.(message);
  };
  const session: McpSession = {
    client,
    received,
    stderr: () => stderr,
    elicitations,
    completed,
    alive: () => !exited && transport.pid !== null,
    async call(name, args, callOptions = {}) {
      const result = (await client.callTool({ name, arguments: args }, CallToolResultSchema, {
        timeout: 240_000,
        resetTimeoutOnProgress: true,
        ...(callOptions.signal ? { signal: callOptions.signal } : {}),
        ...(callOptions.onprogress ? { onprogress: callOptions.onprogress } : {}),
      })) as CallToolResult;
      const text = result.content.map((part) => (part.type === "text" ? part.text : "")).join("\n");
      return { isError: result.isError, text, structured: result.structuredContent, raw: JSON.stringify(result) };
    },
    close: () => client.close(),
  };
  return session;
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
