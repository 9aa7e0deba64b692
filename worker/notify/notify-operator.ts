/**
 * Every new request reaches its operator (DESIGN.md, anti-phishing): the worker signs the
 * one-click link, which only it can, and hands the notice to the account's outbox
 * (durable-objects/notify/notifier.ts), which emails the operator and posts the webhook event
 * durably, retrying across restarts. Runs after the agent has its answer; a failure here is
 * logged and never fails the request.
 */
import type { RequestSummary } from "../../durable-objects/account-types";
import type { IssuedRequest } from "../issue-request";
import { accountStub } from "../stubs";
import { signToken } from "../tokens";

let warnedNoBaseUrl = false;

/**
 * `${PUBLIC_BASE_URL}/approve#link=<token>`: the token rides in the fragment, which browsers never
 * send, so it stays out of server and proxy logs and `Referer` (README, "Notifications that survive outages"). The link is
 * never built from the request's Host header, which the caller controls (issue 11, finding 7):
 * without PUBLIC_BASE_URL there is no link.
 */
export async function approvalUrl(env: Env, issued: Pick<IssuedRequest, "userCode" | "requestId" | "expiresAt">): Promise<string | null> {
  const base = env.PUBLIC_BASE_URL?.trim().replace(/\/+$/, "");
  if (!base) {
    if (!warnedNoBaseUrl) console.error("PUBLIC_BASE_URL is not set: notifications go out without an approval link");
    warnedNoBaseUrl = true;
    return null;
  }
  const token = await signToken(env, "approval_link", { uc: issued.userCode, rid: issued.requestId }, issued.expiresAt);
  return `${base}/approve#link=${token}`;
}

export function summaryOf(issued: IssuedRequest): RequestSummary {
  const { details } = issued;
  return {
    requestId: issued.requestId,
    accountId: details.accountId,
    agent: details.agent,
    description: details.description,
    vaultKey: details.vaultKey,
    expiresAt: issued.expiresAt,
    bindingMessage: details.bindingMessage,
    protocol: details.protocol,
  };
}

export async function notifyOperator(env: Env, issued: IssuedRequest): Promise<void> {
  try {
    await accountStub(env, issued.details.accountId).notifyRequested({
      request: summaryOf(issued),
      approvalUrl: await approvalUrl(env, issued),
      userCode: issued.details.protocol === "device" ? issued.userCode : null,
    });
  } catch (error) {
    console.error("could not queue the operator's notification", issued.requestId, error instanceof Error ? error.message : String(error));
  }
}
