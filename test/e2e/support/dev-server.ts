// A real `wrangler dev` on loopback for end-to-end tests (and bench/soak.ts): one per test file, its own port,
// its own persist directory and its own secrets, so files never share state.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { vapidKeyPair } from "../../../scripts/vapid-key.mjs";
import { api } from "./api.ts";
import { freePort } from "./free-port.ts";
import { sleep } from "../../support/sleep.ts";

export { api, cookieFrom, createAccountAndAgent, type AccountAndAgent, type ApiResponse } from "./api.ts";
export { browserAvailable, launchBrowser } from "./chromium.ts";

export interface DevServer {
  url: string;
  /** PUBLIC_BASE_URL: `url`, or its http://localhost:<port> twin (`publicHost`). */
  publicUrl: string;
  adminToken: string;
  persistDir: string;
  logs(): string;
  stop(): Promise<void>;
  /** Stops the process (`SIGTERM`, then `SIGKILL` after a grace; `{ kill: true }`: `SIGKILL` at once, a crash) and starts it again on the same storage. */
  restart(options?: { kill?: boolean }): Promise<void>;
}

export interface DevServerOptions {
  /** Extra worker vars, e.g. `{ REQUEST_TTL_SECONDS: "5", POLL_INTERVAL_SECONDS: "1" }`. */
  vars?: Record<string, string>;
  /** Reuse a persist directory; by default a fresh temporary one, removed by `stop()`. */
  persistDir?: string;
  /**
   * `localhost`: PUBLIC_BASE_URL is http://localhost:<port> (the server still listens on 127.0.0.1),
   * for passkeys, whose RP ID must be a domain, never an IP address (WebAuthn L3 §5.1.3).
   */
  publicHost?: "127.0.0.1" | "localhost";
}

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const WRANGLER = join(ROOT, "node_modules/wrangler/bin/wrangler.js");
const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 5_000;
const MAX_LOG_CHARS = 200_000;

/** Every process group still running, killed if the test process exits without `stop()`. */
const liveGroups = new Set<number>();
process.on("exit", () => {
  for (const pgid of liveGroups) killGroup(pgid, "SIGKILL");
});

function secret(): string {
  return randomBytes(32).toString("base64url");
}

async function portInUse(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      done(true);
    });
    socket.once("error", () => done(false));
  });
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}


/**
 * Starts `wrangler dev` and resolves once the worker answers its metadata path with a non-5xx.
 * A port is free when picked and bound only later by workerd, so another process on this machine can
 * take it in between ("Address already in use"): then the start is tried again on new ports, at most
 * three times. Any other failure is final.
 */
export async function startDevServer(opts: DevServerOptions = {}): Promise<DevServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDevServerOnce(opts);
    } catch (error) {
      if (attempt >= 3 || !(error instanceof Error && error.message.includes("Address already in use"))) throw error;
    }
  }
}

async function startDevServerOnce(opts: DevServerOptions): Promise<DevServer> {
  const ownsPersistDir = opts.persistDir === undefined;
  const persistDir = opts.persistDir ?? (await mkdtemp(join(tmpdir(), "keyferry-e2e-")));
  const adminToken = secret();
  const port = await freePort();
  let inspectorPort = await freePort();
  while (inspectorPort === port) inspectorPort = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // PUBLIC_BASE_URL: emailed and webhook links are built only from it (never from the Host header).
  const publicUrl = opts.publicHost === "localhost" ? `http://localhost:${port}` : url;
  const vars: Record<string, string> = { ADMIN_TOKEN: adminToken, TOKEN_SIGNING_KEY: secret(), VAPID_PRIVATE_KEY: vapidKeyPair().privateJwk, VAPID_SUBJECT: "mailto:ops@keyferry.test", PUBLIC_BASE_URL: publicUrl, ...opts.vars };
  const args = [
    WRANGLER, "dev",
    "--ip", "127.0.0.1",
    "--port", String(port),
    "--inspector-port", String(inspectorPort),
    "--persist-to", persistDir,
    "--show-interactive-dev-session=false",
    "--log-level", "log",
    ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
  ];
  // Vitest's own variables must not leak into the worker's build.
  const env: NodeJS.ProcessEnv = { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" };
  for (const name of Object.keys(env)) if (name.startsWith("VITEST") || name === "NODE_ENV") delete env[name];

  let log = "";
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const append = (chunk: Buffer | string) => {
    log += chunk.toString();
    if (log.length > MAX_LOG_CHARS) log = log.slice(-MAX_LOG_CHARS);
  };

  async function launch(): Promise<void> {
    append(`\n--- starting wrangler dev on ${url} ---\n`);
    // process.execPath is the Node running the tests (22, via npm/npx); wrangler refuses older ones.
    const proc = spawn(process.execPath, args, { cwd: ROOT, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    const pgid = proc.pid;
    if (pgid === undefined) throw new Error("could not spawn wrangler dev");
    liveGroups.add(pgid);
    proc.stdout?.on("data", append);
    proc.stderr?.on("data", append);
    let hasExited = false;
    exited = new Promise((done) => {
      proc.once("exit", (code, signal) => {
        hasExited = true;
        append(`\n--- wrangler dev exited (code ${code}, signal ${signal}) ---\n`);
        done();
      });
    });

    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (hasExited) throw new Error(`wrangler dev exited before it was ready. Logs:\n${log}`);
      try {
        const res = await fetch(`${url}/.well-known/oauth-authorization-server`, { signal: AbortSignal.timeout(5_000) });
        await res.arrayBuffer();
        if (res.status < 500) return;
      } catch {
        // Not listening yet.
      }
      await sleep(250);
    }
    await halt();
    throw new Error(`wrangler dev was not ready within ${READY_TIMEOUT_MS / 1000} s. Logs:\n${log}`);
  }

  async function halt(crash = false): Promise<void> {
    const proc = child;
    if (!proc?.pid) return;
    const pgid = proc.pid;
    child = undefined;
    if (!crash) {
      killGroup(pgid, "SIGTERM");
      await Promise.race([exited, sleep(STOP_GRACE_MS)]);
    }
    // workerd runs in the same group and may outlive wrangler itself.
    killGroup(pgid, "SIGKILL");
    await exited;
    liveGroups.delete(pgid);
    const deadline = Date.now() + STOP_GRACE_MS;
    while ((await portInUse(port)) && Date.now() < deadline) await sleep(100);
  }

  await launch();

  return {
    url,
    publicUrl,
    adminToken,
    persistDir,
    logs: () => log,
    async stop() {
      await halt();
      if (ownsPersistDir && existsSync(persistDir)) await rm(persistDir, { recursive: true, force: true });
    },
    async restart(options = {}) {
      await halt(options.kill === true);
      await launch();
    },
  };
}
