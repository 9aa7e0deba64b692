/**
 * One `wrangler dev` for a file of notification tests (polls every second, http webhooks allowed so
 * the loopback receivers can be used), the receivers its tests start, and the account's webhook
 * setting. Call it first inside a `describe`: the server is `useDevServer`'s (started before the
 * file's own hooks, stopped after them), and every receiver is closed after the file.
 */
import { afterAll, beforeAll, expect } from "vitest";
import type { AccountUpdatedBody } from "../../../core/wire";
import { api, type DevServer } from "./dev-server";
import { startReceiver, type Receiver } from "./receiver";
import { useDevServer } from "./use-dev-server";

export interface NotificationServer {
  /** The running server (read it inside a test or hook, once `beforeAll` has run). */
  readonly server: DevServer;
  /** The admin API's `Authorization` header. */
  admin(): { authorization: string };
  /** A receiver that is closed after the file. */
  receiver(...args: Parameters<typeof startReceiver>): Promise<Receiver>;
  /** Sets the account's webhook and returns its secret, shown only in this answer. */
  setWebhook(accountId: string, body: { webhook_url: string; webhook_format?: "keyferry" | "slack" }): Promise<string>;
  /** The server and the file's receiver (`useNotificationServer({ receiver: true })`), once `beforeAll` has run. */
  started(): { server: DevServer; hooks: Receiver };
}

export function useNotificationServer(options: { receiver?: boolean } = {}): NotificationServer {
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: "1", ALLOW_HTTP_WEBHOOKS: "true" } });
  let hooks: Receiver | undefined;
  const receivers: Receiver[] = [];
  beforeAll(async () => {
    if (options.receiver) receivers.push((hooks = await startReceiver()));
  });
  afterAll(async () => {
    for (const receiver of receivers) await receiver.close();
  });
  const admin = () => ({ authorization: `Bearer ${server.adminToken}` });
  return {
    server,
    admin,
    async receiver(...args) {
      const receiver = await startReceiver(...args);
      receivers.push(receiver);
      return receiver;
    },
    started() {
      if (!hooks) throw new Error("no receiver: call useNotificationServer({ receiver: true })");
      return { server, hooks };
    },
    async setWebhook(accountId, body) {
      const patched = await api<AccountUpdatedBody>(server, "PATCH", `/v1/admin/accounts/${accountId}`, body, admin());
      expect(patched.status, patched.text).toBe(200);
      expect(typeof patched.json.webhook_secret).toBe("string");
      return patched.json.webhook_secret!;
    },
  };
}
