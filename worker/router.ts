/**
 * The edge router: every public route (README, "A handoff in five requests" and "Contract notes"),
 * one error renderer, no state of its own.
 */
import { Router, type IRequest } from "itty-router";
import { HttpError, renderError } from "./errors";
import * as admin from "./routes/admin";
import * as approvals from "./routes/approvals";
import * as ciba from "./routes/ciba";
import * as consoleAccount from "./routes/console-account";
import * as consoleRequests from "./routes/console-requests";
import * as consoleAuth from "./routes/console-auth";
import * as consolePush from "./routes/console-push";
import * as consoleSaved from "./routes/console-saved";
import * as credentials from "./routes/credentials";
import * as oauth from "./routes/oauth";
import * as pages from "./routes/pages";
import * as vault from "./routes/vault";

type Handler = (request: IRequest, env: Env, ctx: ExecutionContext) => Response | Promise<Response>;

/** No `catch` of its own: every error, from a route or the polling dispatch, is rendered once, in `handleRequest`. */
const router = Router<IRequest, [Env, ExecutionContext]>();

/** Registers a path's handlers and answers 405 for every other method on it. */
function route(path: string, handlers: Partial<Record<"get" | "post" | "put" | "patch" | "delete", Handler>>): void {
  for (const [method, handler] of Object.entries(handlers)) router[method](path, handler);
  if (handlers.get) router.head(path, handlers.get);
  const allow = [...Object.keys(handlers), ...(handlers.get ? ["head"] : [])].map((m) => m.toUpperCase()).join(", ");
  router.all(path, () => {
    throw new HttpError(405, "method_not_allowed", `Use ${allow} on this path.`, { Allow: allow });
  });
}

route("/.well-known/oauth-authorization-server", { get: oauth.metadata });
route("/oauth/device_authorization", { post: oauth.deviceAuthorization });
route("/oauth/token", { post: oauth.token });
route("/oauth/bc-authorize", { post: ciba.backchannelAuthorize });

route("/v1/credentials/request", { post: credentials.requestCredential });
route("/v1/credentials/poll", { post: credentials.pollCredential });
route("/v1/credentials/ack", { post: credentials.acknowledgeCredential });
route("/v1/credentials/wait", { get: credentials.waitForDecision });

route("/v1/approvals/lookup", { post: approvals.lookup });
route("/v1/approvals/challenge", { post: approvals.challenge });
route("/v1/approvals/decide", { post: approvals.decide });

// The operator console (README, "Console"): behind the session cookie, scoped to its account.
route("/v1/console/requests", { get: consoleRequests.listRequests });
route("/v1/console/requests/live", { get: consoleRequests.liveRequests });
route("/v1/console/requests/:request_id/challenge", { post: consoleRequests.challenge });
route("/v1/console/requests/:request_id/decide", { post: consoleRequests.decide });
route("/v1/console/audit", { get: consoleAccount.auditLog });
route("/v1/console/agents", { get: consoleAccount.listAgents, post: consoleAccount.createAgent });
route("/v1/console/agents/:agent_id", { delete: consoleAccount.deleteAgent });
route("/v1/console/operators", { get: consoleAccount.getOperators, post: consoleAccount.addOperator });
route("/v1/console/operators/:operator_id", { delete: consoleAccount.deleteOperator });
route("/v1/console/push", { get: consolePush.pushKey });
route("/v1/console/push-subscriptions", { post: consolePush.subscribe });
route("/v1/console/push-subscriptions/:subscription_id", { delete: consolePush.unsubscribe });
route("/v1/console/saved", { get: consoleSaved.listSaved });
route("/v1/console/saved/:name", { get: consoleSaved.getSaved, put: consoleSaved.putSaved, delete: consoleSaved.deleteSaved });
route("/v1/console/settings", { get: consoleAccount.getSettings, patch: consoleAccount.updateSettings });
route("/v1/console/enrol/options", { post: consoleAuth.enrolOptions });
route("/v1/console/enrol", { post: consoleAuth.enrol });
route("/v1/console/sign-in/options", { post: consoleAuth.signInOptions });
route("/v1/console/sign-in", { post: consoleAuth.signIn });
route("/v1/console/session", { get: consoleAuth.currentSession, delete: consoleAuth.signOut });

route("/v1/admin/accounts", { post: admin.createAccount });
route("/v1/admin/accounts/:account_id", { get: admin.getAccount, patch: admin.updateAccount });
route("/v1/admin/accounts/:account_id/agents", { post: admin.createAgent });
route("/v1/admin/accounts/:account_id/agents/:agent_id", { delete: admin.deleteAgent });
route("/v1/admin/accounts/:account_id/audit", { get: admin.auditLog });
route("/v1/admin/accounts/:account_id/operators", { post: admin.createOperator, get: admin.getOperators });
route("/v1/admin/accounts/:account_id/operators/:operator_id", { delete: admin.deleteOperator });

route("/v1/vault", { get: vault.listItems });
route("/v1/vault/:vault_key", { get: vault.getItem, put: vault.putItem, delete: vault.deleteItem });

route("/", { get: pages.home });
route("/approve", { get: pages.approvePage });
route("/console", { get: pages.consolePage });
route("/assets/*", { get: pages.asset });
route("/console-sw.js", { get: pages.asset });

router.all("*", () => {
  throw new HttpError(404, "not_found", "No such endpoint.");
});

/**
 * The polling endpoints, taken ahead of the table on their exact POST path: an agent calls one every
 * few seconds while its request is pending, and skipping itty-router's per-request work (the URL's
 * query object, properties set on the request, the walk over the routes) made polls 1.03–1.08× as
 * fast, side by side (bench/README.md, "The router's share"). Any other method or spelling goes
 * through the table, to the same handler or to its 405 or 404 (test/integration/polling-dispatch.test.ts).
 */
const POLLING_ROUTES = new Map<string, (request: Request, env: Env) => Promise<Response>>([
  ["/v1/credentials/poll", credentials.pollCredential],
  ["/oauth/token", oauth.token],
]);

export async function handleRequest(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  try {
    const polling = request.method === "POST" ? POLLING_ROUTES.get(new URL(request.url).pathname) : undefined;
    return await (polling ? polling(request, env) : router.fetch(request, env, ctx));
  } catch (error) {
    return renderError(error);
  }
}
