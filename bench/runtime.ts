/**
 * The local runtime for the benchmark: one workerd process started through Miniflare's API, with
 * the Keyferry worker and the three ceiling workers side by side. Each worker gets its own
 * "direct socket" (`unsafeDirectSockets`, `proxy: false`): a workerd HTTP listener bound straight to
 * that worker, bypassing Miniflare's entry worker and `wrangler dev`'s proxy, so the numbers are
 * workerd's own.
 *
 * With `preventEviction`, RequestDO and do-read's objects set `unsafePreventEviction`: local
 * workerd evicts an object idle for 10 s and reloads it from its own SQLite file, at a few hundred
 * objects a second on these machines, so a round robin over thousands of pending requests would
 * measure reloading instead of polling (in production an object polled every few seconds stays in
 * memory). It is off for creation runs: every live object keeps about 3 file descriptors open.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare, convertV4MiniflareOptions } from "miniflare";
import { sleep } from "../test/support/sleep.ts";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TMP = join(ROOT, "bench/.tmp");

export interface Runtime {
  urls: { keyferry: string; bare: string; doRead: string; doCreate: string };
  adminToken: string;
  /** The workerd process(es) Miniflare spawned, for memory readings. */
  workerdPids(): number[];
  /**
   * Waits (at most `maxMs`) until workerd has closed the objects the last run left open, and says
   * how long that took (null: they were still open at `maxMs`). Local workerd evicts an object 10 s after its last call, and closing a
   * SQLite object checkpoints its WAL: about a sixth more writes than creating it made, which
   * would otherwise fall on the next run (bench/README.md, "How the bench measures").
   */
  settle(maxMs?: number): Promise<number | null>;
  /** Open file descriptors of its busiest workerd process (the limit, 20,000, is per process; a live SQLite object holds about 3). */
  openDescriptors(): number;
  dispose(): Promise<void>;
}

/** Bundles worker/index.ts (or the metered entry) as wrangler would (ESM, workerd export conditions). */
async function bundleWorker(metered: boolean): Promise<string> {
  await mkdir(TMP, { recursive: true });
  const outfile = join(TMP, metered ? "keyferry-metered.mjs" : "keyferry.mjs");
  await build({
    entryPoints: [join(ROOT, metered ? "bench/workers/metered.ts" : "worker/index.ts")],
    outfile,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["module", "main"],
    external: ["cloudflare:*"],
    logLevel: "warning",
  });
  return outfile;
}

const compatibilityDate = async () =>
  /compatibility_date\s*=\s*"([^"]+)"/.exec(await readFile(join(ROOT, "wrangler.toml"), "utf8"))?.[1] ?? "2026-11-01";

export interface RuntimeOptions {
  /** Keep Durable Object storage here (default: Miniflare's temporary directory). */
  persistDir?: string;
  /**
   * `stub` (default): EMAIL is a service binding to bench/workers/email-stub.js. `miniflare`:
   * Miniflare's local send_email, which parses each message and writes an .eml file.
   */
  email?: "stub" | "miniflare";
  /** Keep RequestDO and do-read objects in memory (see above). */
  preventEviction?: boolean;
  /** The worker with the cost meter (bench/workers/metered.ts). */
  metered?: boolean;
}

export async function startRuntime(vars: Record<string, string>, opts: RuntimeOptions = {}): Promise<Runtime> {
  const scriptPath = await bundleWorker(opts.metered ?? false);
  const date = await compatibilityDate();
  const adminToken = randomBytes(24).toString("base64url");
  const direct = [{ host: "127.0.0.1", port: 0, proxy: false }];
  const keepInMemory = opts.preventEviction ?? false;
  const workerdBefore = new Set(workerdChildren());
  const ceiling = (name: string, file: string, withDo: boolean) => ({
    name,
    modules: true,
    modulesRoot: ROOT,
    scriptPath: join(ROOT, "bench/workers", file),
    compatibilityDate: date,
    unsafeDirectSockets: direct,
    ...(withDo ? { durableObjects: { ROWS: { className: "Row", useSQLite: true, unsafePreventEviction: keepInMemory } } } : {}),
  });
  // Miniflare 5 takes a new option shape; the v4 shape (documented in its README) is converted.
  const mf = new Miniflare(convertV4MiniflareOptions({
    // Miniflare 5's persistence root (`<dir>/do/<namespace>/<id>.sqlite`); its v4 converter drops
    // the v4 `durableObjectsPersist`, which left storage in a temporary directory and the scans empty.
    ...(opts.persistDir ? { resourcePersistencePath: opts.persistDir } : {}),
    workers: [
      {
        name: "keyferry",
        modules: true,
    modulesRoot: ROOT,
        scriptPath,
        compatibilityDate: date,
        bindings: {
          ADMIN_TOKEN: adminToken,
          TOKEN_SIGNING_KEY: randomBytes(32).toString("base64url"),
          REQUEST_TTL_SECONDS: "600",
          POLL_INTERVAL_SECONDS: "1",
          PUBLIC_BASE_URL: "",
          ALLOW_HTTP_WEBHOOKS: "false",
          EMAIL_FROM: "keyferry@keyferry.local",
          ...vars,
        },
        durableObjects: {
          REQUESTS: { className: "RequestDO", useSQLite: true, unsafePreventEviction: keepInMemory },
          ACCOUNTS: { className: "AccountDO", useSQLite: true },
          VAULTS: { className: "VaultDO", useSQLite: true },
        },
        // The global look-up limit (1,000 a minute in wrangler.toml) is raised: the bench plays thousands of operators at once.
        ratelimits: {
          LOOKUP_LIMITER: { namespace_id: "1001", simple: { limit: 60, period: 60 } },
          LOOKUP_GLOBAL_LIMITER: { namespace_id: "1002", simple: { limit: 1_000_000, period: 60 } },
        },
        ...(opts.email === "miniflare" ? { email: { send_email: [{ name: "EMAIL" }] } } : { serviceBindings: { EMAIL: "email-stub" } }),
        unsafeDirectSockets: direct,
      },
      ceiling("bare", "bare.js", false),
      ceiling("do-read", "do-read.js", true),
      ceiling("do-create", "do-create.js", true),
      { name: "email-stub", modules: true, modulesRoot: ROOT, scriptPath: join(ROOT, "bench/workers/email-stub.js"), compatibilityDate: date },
    ],
  }));
  await mf.ready;
  // This runtime's own workerd process(es): those that appeared while it started.
  const pids = workerdChildren().filter((pid) => !workerdBefore.has(pid));
  // What the idle runtime holds open (its listeners, logs, the namespaces' metadata): "settled" is back near it.
  const idleDescriptors = openDescriptors(pids);
  const url = async (name: string) => (await mf.unsafeGetDirectURL(name)).origin;
  const urls = { keyferry: await url("keyferry"), bare: await url("bare"), doRead: await url("do-read"), doCreate: await url("do-create") };
  return {
    urls,
    adminToken,
    workerdPids: () => pids,
    settle: async (maxMs = 20_000) => {
      const started = Date.now();
      while (openDescriptors(pids) > idleDescriptors + SETTLED_SLACK) {
        if (Date.now() - started >= maxMs) return null;
        await sleep(250);
      }
      return Date.now() - started;
    },
    openDescriptors: () => openDescriptors(pids),
    dispose: () => mf.dispose(),
  };
}

const workerdChildren = () => childPids(process.pid).filter((pid) => commandOf(pid).includes("workerd"));

function childPids(parent: number): number[] {
  try {
    const out = execFileSync("ps", ["-o", "pid=", "--ppid", String(parent)], { encoding: "utf8" });
    const direct = out.split("\n").map((line) => Number(line.trim())).filter((pid) => pid > 0);
    return direct.flatMap((pid) => [pid, ...childPids(pid)]);
  } catch {
    return [];
  }
}

function commandOf(pid: number): string {
  try {
    return execFileSync("ps", ["-o", "comm=", "-p", String(pid)], { encoding: "utf8" }).trim();
  } catch {
    return "";
  }
}

/** Descriptors a runtime may hold open beyond its idle ones and count as settled: a run's closing connections, a few live objects. */
const SETTLED_SLACK = 64;

function openDescriptors(pids: number[]): number {
  return Math.max(0, ...pids.map((pid) => {
    try {
      return readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      return 0;
    }
  }));
}

/** Resident set size of the runtime in MiB (sum over its workerd processes), from /proc. */
export async function runtimeRssMiB(runtime: Runtime): Promise<number> {
  let kib = 0;
  for (const pid of runtime.workerdPids()) {
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    kib += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  }
  return Math.round(kib / 1024);
}
