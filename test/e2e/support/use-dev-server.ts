/**
 * The one set-up for an e2e file that needs a `wrangler dev`:
 *
 *     describe("…", () => {
 *       const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: "1" } });
 *       it("…", async () => { await api(server, "GET", "/.well-known/oauth-authorization-server"); });
 *     });
 *
 * Call it first in the `describe` (or at the top of the file): it registers the `beforeAll` that
 * starts the server (`startDevServer(options)`: own port, persist directory and secrets) and the
 * `afterAll` that stops it and removes the directory. Hooks registered after it run after the server
 * is up, and their `afterAll`s run before it stops (vitest runs `afterAll`s in reverse).
 * The returned server is used inside tests and hooks only: reading it before the start throws.
 * It is not for bench/soak.ts, which runs outside vitest and calls `startDevServer` itself.
 */
import { afterAll, beforeAll } from "vitest";
import { startDevServer, type DevServer, type DevServerOptions } from "./dev-server";

export function useDevServer(options: DevServerOptions = {}): DevServer {
  let started: DevServer | undefined;
  beforeAll(async () => {
    started = await startDevServer(options);
  });
  afterAll(async () => {
    await started?.stop();
  });
  const running = (): DevServer => {
    if (!started) throw new Error("the dev server is not started yet: use it inside a test or hook");
    return started;
  };
  return {
    get url() {
      return running().url;
    },
    get publicUrl() {
      return running().publicUrl;
    },
    get adminToken() {
      return running().adminToken;
    },
    get persistDir() {
      return running().persistDir;
    },
    logs: () => running().logs(),
    stop: () => running().stop(),
    restart: (options) => running().restart(options),
  };
}
