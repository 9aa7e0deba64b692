/**
 * Who may make a `/v1/console/*` call (README, "Console"). Reads need the session cookie; every
 * state change also needs `Content-Type: application/json` and the service's own `Origin`, both
 * checked first, at the edge, before the session is (so a cross-site form or a foreign page never
 * reaches an object). Owner-only calls answer 403 `access_denied` to an approver.
 */
import { HttpError } from "./errors";
import { requireConsoleSession, requireSameOriginJson, type ConsoleSession } from "./console/session";

export type { ConsoleSession } from "./console/session";

export const consoleReader = (request: Request, env: Env): Promise<ConsoleSession> => requireConsoleSession(request, env);

export async function consoleWriter(request: Request, env: Env): Promise<ConsoleSession> {
  requireSameOriginJson(request, env);
  return requireConsoleSession(request, env);
}

export function requireOwner(session: ConsoleSession): void {
  if (session.operator.role !== "owner") throw new HttpError(403, "access_denied", "Only an owner of this account may do this.");
}

/** The operator as the audit log names them for account changes made from the console. */
export const consoleActor = (session: ConsoleSession) => session.operator.email;
