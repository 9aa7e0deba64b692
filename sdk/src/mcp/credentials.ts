// request_credential and wait_for_credential: ask the operator (device flow, end to end by default),
// wait with progress, store the credential in the vault. Results name the vault key, never the value.
import { inputRequired, inputResponse, type CallToolResult, type ClientCapabilities, type InputRequiredResult, type ServerContext } from "@modelcontextprotocol/server";
import type { KeyferryClient } from "../client";
import { KeyferryError } from "../errors";
import { ApprovalStates, type ToolCall } from "./approval-state";
import { approvalChannel, elicitUrl, type ElicitationMode, type UrlElicitation } from "./elicitation";
import { formatDuration, instructions, PendingCredentials, type PendingCredential } from "./pending";
import { describeError, toolError, toolResult } from "./results";

export interface CredentialToolOptions {
  /** How long one wait_for_credential call waits before it answers "still pending" (many clients cut calls at 60 s). */
  waitSliceMs: number;
  /** How often progress is reported while waiting. */
  progressEveryMs: number;
  elicitation: ElicitationMode;
  /** What a 2025-11-25 client declared in initialize (undefined before, and on 2026-07-28). */
  legacyCapabilities: () => ClientCapabilities | undefined;
  now: () => number;
}

const STORE_ATTEMPTS = 3;
/** Answers a client never gives on `elicitation/create` do not hold the tool call past the request's life. */
const MIN_ELICITATION_TIMEOUT_MS = 1_000;
/** The key of the URL elicitation in a 2026-07-28 `inputRequests`/`inputResponses`. */
const APPROVE = "approve";

type RequestInput = { description: string; vault_key: string };

export function credentialTools(ferry: KeyferryClient, options: CredentialToolOptions) {
  const pending = new PendingCredentials(options.now);
  const states = new ApprovalStates();

  async function start(description: string, vaultKey: string, signal: AbortSignal): Promise<PendingCredential> {
    const existing = pending.get(vaultKey);
    if (existing && existing.description === description) return existing; // the same question, still open: no second one
    const requestedAt = options.now();
    const request = await ferry.credentials.request({ description, vaultKey, signal });
    return pending.add(vaultKey, description, request, requestedAt);
  }

  async function request(input: RequestInput, context: ServerContext): Promise<CallToolResult | InputRequiredResult> {
    const call: ToolCall = { name: "request_credential", arguments: input };
    const state = context.mcpReq.requestState<unknown>();
    if (state !== undefined) return resume(call, state, context);

    const entry = await start(input.description, input.vault_key, context.mcpReq.signal);
    if (entry.waiting) return toolError(`already waiting for "${entry.vaultKey}" in another call`);
    switch (approvalChannel(options.elicitation, context, options.legacyCapabilities())) {
      case "text":
        return answerAtOnce(entry, context);
      case "input-required": {
        // 2026-07-28: the client shows the URL, then retries this call with the state (resume below).
        const { state: requestState, nonce } = await states.mint(call);
        entry.stateNonce = nonce;
        return inputRequired({ inputRequests: { [APPROVE]: inputRequired.elicitUrl({ url: entry.url, message: approvalMessage(entry) }) }, requestState });
      }
      case "elicitation-create":
        return pushElicitation(entry, context);
    }
  }

  /** The 2026-07-28 retry: a requestState we minted for this very call, unused, and the user's answer. */
  async function resume(call: ToolCall, state: unknown, context: ServerContext): Promise<CallToolResult> {
    const checked = typeof state === "string" ? await states.check(state, call, context) : { ok: false as const };
    const entry = checked.ok ? pending.get(checked.vaultKey) : undefined;
    if (!checked.ok || !entry || entry.stateNonce !== checked.nonce) {
      return toolError(
        "refused: the requestState is not one this server issued for this call, or it expired or was already used. " +
          "Call request_credential again without it.",
      );
    }
    entry.stateNonce = undefined; // spent: a replay of the same state is refused above
    const answer = inputResponse(context.mcpReq.inputResponses, APPROVE);
    if (answer.kind !== "elicit" || answer.action !== "accept") {
      const action = answer.kind === "elicit" ? answer.action : "no answer";
      return toolError(
        `The user did not open the approval page (${action}). ${instructions(entry, options.now())} ` +
          `If they approve later, call wait_for_credential with {"vault_key": "${entry.vaultKey}"}.`,
        { status: "pending", ...facts(entry, options.now()) },
      );
    }
    if (entry.waiting) return toolError(`already waiting for "${entry.vaultKey}" in another call`);
    return waitAndStore(entry, context, undefined);
  }

  /** Clients without URL elicitation (or that cut long calls off): answer at once, in progress and result; wait_for_credential waits. */
  async function answerAtOnce(entry: PendingCredential, context: ServerContext): Promise<CallToolResult> {
    const now = options.now();
    const progressToken = context.mcpReq._meta?.progressToken;
    if (progressToken !== undefined) {
      const total = Math.max(1, Math.round((entry.expiresAt - entry.requestedAt) / 1000));
      await context.mcpReq
        .notify({ method: "notifications/progress", params: { progressToken, progress: 0, total, message: instructions(entry, now) } })
        .catch(() => undefined);
    }
    return toolResult(
      `${instructions(entry, now)} Then call wait_for_credential with {"vault_key": "${entry.vaultKey}"}. ` +
        `The credential goes into the vault, encrypted on this machine; it is never shown to you.`,
      { status: "pending", ...facts(entry, now) },
    );
  }

  /** 2025-11-25: `elicitation/create` (mode url) while this call stays open, then the wait. */
  async function pushElicitation(entry: PendingCredential, context: ServerContext): Promise<CallToolResult> {
    const pendingFacts = facts(entry, options.now());
    let elicitation: UrlElicitation;
    try {
      elicitation = await elicitUrl(context, {
        url: entry.url,
        message: approvalMessage(entry),
        timeoutMs: Math.max(MIN_ELICITATION_TIMEOUT_MS, entry.expiresAt - options.now()),
      });
    } catch {
      // The client failed or timed out on elicitation/create (or the call was cancelled): the request is still open.
      return toolError(
        `The client did not show the approval page. ${instructions(entry, options.now())} ` +
          `Then call wait_for_credential with {"vault_key": "${entry.vaultKey}"}.`,
        { status: "pending", ...pendingFacts },
      );
    }
    if (elicitation.action !== "accept") {
      return toolError(
        `The user did not open the approval page (${elicitation.action}). ${instructions(entry, options.now())} ` +
          `If they approve later, call wait_for_credential with {"vault_key": "${entry.vaultKey}"}.`,
        { status: "pending", ...pendingFacts },
      );
    }
    try {
      return await waitAndStore(entry, context, undefined);
    } finally {
      await elicitation.complete();
    }
  }

  async function wait(input: { vault_key: string }, context: ServerContext): Promise<CallToolResult> {
    const entry = pending.get(input.vault_key);
    if (!entry) {
      return toolError(
        `no pending request for "${input.vault_key}" in this keyferry mcp process (requests live only in its memory); call request_credential first`,
      );
    }
    if (entry.waiting) return toolError(`already waiting for "${entry.vaultKey}" in another call`);
    return waitAndStore(entry, context, options.waitSliceMs);
  }

  /** Waits for the decision (at most `sliceMs`, or until the request ends), then stores the credential. */
  async function waitAndStore(entry: PendingCredential, context: ServerContext, sliceMs: number | undefined): Promise<CallToolResult> {
    entry.waiting = true;
    const stopProgress = reportProgress(entry, context);
    try {
      if (entry.approvedValue === undefined) {
        const left = entry.expiresAt - options.now();
        // Past the request's end the server answers expired_token: let that, not our slice, end the wait.
        const timeout = sliceMs !== undefined && sliceMs < left ? sliceMs : undefined;
        const approved = await ferry.credentials.waitForApproval(entry.deviceCode, {
          signal: context.mcpReq.signal,
          acknowledge: false,
          ...(timeout !== undefined ? { timeout } : {}),
        });
        entry.approvedValue = approved.credentialValue;
      }
      await store(entry.vaultKey, entry.approvedValue, context.mcpReq.signal);
      pending.delete(entry);
      // Stored: the server may forget the answer it kept for a lost response (it does anyway within a minute).
      await ferry.credentials.acknowledge(entry.deviceCode, { signal: context.mcpReq.signal }).catch(() => undefined);
      return toolResult(
        `Approved. The credential is stored in the vault as "${entry.vaultKey}" (encrypted on this machine). ` +
          `It is not shown here: use it with run_with_credentials, or "keyferry run --secret ENV_NAME=${entry.vaultKey} -- command".`,
        { status: "stored", vault_key: entry.vaultKey },
      );
    } catch (error) {
      return waitFailed(entry, error);
    } finally {
      entry.waiting = false;
      stopProgress();
    }
  }

  function waitFailed(entry: PendingCredential, error: unknown): CallToolResult {
    const code = error instanceof KeyferryError ? error.code : undefined;
    const now = options.now();
    switch (code) {
      case "TIMEOUT":
        return toolResult(
          `Still waiting for the operator (${formatDuration(entry.expiresAt - now)} left). ${instructions(entry, now)} ` +
            `Call wait_for_credential with {"vault_key": "${entry.vaultKey}"} again to keep waiting.`,
          { status: "pending", ...facts(entry, now) },
        );
      case "ABORTED":
        return toolError(`cancelled; the request for "${entry.vaultKey}" is still open: call wait_for_credential to resume`);
      case "ACCESS_DENIED":
      case "EXPIRED_TOKEN":
      case "INVALID_GRANT":
      case "MISSING_KEY":
      case "DECRYPTION_FAILED":
      case "INVALID_RESPONSE":
        pending.delete(entry);
        return toolError(`the request for "${entry.vaultKey}" ended: ${describeError(error)}`, { status: "failed", vault_key: entry.vaultKey });
      default:
        return toolError(
          `${describeError(error)}; the request for "${entry.vaultKey}" is still open: call wait_for_credential to retry`,
          { status: "pending", ...facts(entry, now) },
        );
    }
  }

  /** The credential was delivered exactly once: ride out a short outage rather than lose it. */
  async function store(vaultKey: string, value: string, signal: AbortSignal): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await ferry.vault.put(vaultKey, value, { signal });
        return;
      } catch (error) {
        const transient = error instanceof KeyferryError && (error.code === "NETWORK" || error.code === "SERVER_ERROR");
        if (!transient || attempt === STORE_ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
      }
    }
  }

  /** `notifications/progress` (when the client sent a progressToken) with the time left, until stopped. */
  function reportProgress(entry: PendingCredential, context: ServerContext): () => void {
    const token = context.mcpReq._meta?.progressToken;
    if (token === undefined) return () => undefined;
    const total = Math.max(1, Math.round((entry.expiresAt - entry.requestedAt) / 1000));
    let last = 0;
    const send = () => {
      const now = options.now();
      const progress = Math.max(last + 1, Math.round((now - entry.requestedAt) / 1000));
      last = progress;
      const message = `Waiting for the operator to approve "${entry.vaultKey}" at ${entry.url}: ${formatDuration(entry.expiresAt - now)} left`;
      context.mcpReq
        .notify({ method: "notifications/progress", params: { progressToken: token, progress, total, message } })
        .catch(() => undefined);
    };
    send();
    const timer = setInterval(send, options.progressEveryMs);
    return () => clearInterval(timer);
  }

  return { request, wait };
}

function approvalMessage(entry: PendingCredential): string {
  return (
    `Approve Keyferry's request for "${entry.vaultKey}": ${entry.description}` +
    (entry.keyFingerprint ? ` (the page must show key fingerprint ${entry.keyFingerprint})` : "")
  );
}

function facts(entry: PendingCredential, now: number): Record<string, unknown> {
  return {
    vault_key: entry.vaultKey,
    url: entry.url,
    user_code: entry.userCode,
    key_fingerprint: entry.keyFingerprint,
    expires_at: new Date(entry.expiresAt).toISOString(),
    expires_in: Math.max(0, Math.round((entry.expiresAt - now) / 1000)),
  };
}
