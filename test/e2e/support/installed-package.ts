// The `keyferry` package as an agent developer gets it: `npm pack` in sdk/, then `npm install
// <tarball>` into a fresh project under the OS temp folder. Test files share one install per tarball
// content (keyed by its SHA-256), so packing is repeated but installing is not.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

export interface InstalledPackage {
  /** The consumer project: package.json and node_modules/keyferry. */
  dir: string;
  /** Its `keyferry` bin (node_modules/.bin/keyferry). */
  bin: string;
  tarball: string;
  /** What `npm pack --json` reported: packed size and unpacked size in bytes. */
  packedBytes: number;
  unpackedBytes: number;
}

/**
 * The environment for npm in another project: the `npm test` run's own npm_* variables (its
 * prefix, its workspace) must not steer an install elsewhere; PATH (Node 22) and HOME stay.
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(name) || name === "INIT_CWD" || name.startsWith("VITEST") || name === "NODE_ENV") continue;
    env[name] = value;
  }
  return { ...env, ...extra };
}

export async function installedPackage(): Promise<InstalledPackage> {
  const packDir = mkdtempSync(join(tmpdir(), "keyferry-pack-"));
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", packDir], {
    cwd: join(ROOT, "sdk"),
    env: cleanEnv(),
    maxBuffer: 16 * 1024 * 1024,
  });
  // prepack's build may print before the JSON array.
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf("["))) as Array<{ filename: string; size: number; unpackedSize: number }>;
  if (!packed) throw new Error(`npm pack printed no result: ${stdout}`);
  const packedTarball = join(packDir, packed.filename);
  const hash = createHash("sha256").update(readFileSync(packedTarball)).digest("hex").slice(0, 16);
  const dir = join(tmpdir(), `keyferry-installed-${hash}`);
  const result = (tarball: string): InstalledPackage => ({
    dir,
    bin: join(dir, "node_modules/.bin/keyferry"),
    tarball,
    packedBytes: packed.size,
    unpackedBytes: packed.unpackedSize,
  });

  if (!existsSync(join(dir, ".installed"))) {
    const staging = mkdtempSync(join(tmpdir(), "keyferry-installing-"));
    const tarball = join(staging, packed.filename);
    renameSync(packedTarball, tarball);
    writeFileSync(join(staging, "package.json"), `${JSON.stringify({ name: "keyferry-consumer", private: true, type: "module" }, null, 2)}\n`);
    await run("npm", ["install", "--no-audit", "--no-fund", "--save", `./${packed.filename}`], { cwd: staging, env: cleanEnv(), maxBuffer: 16 * 1024 * 1024 });
    writeFileSync(join(staging, ".installed"), `${new Date().toISOString()}\n`);
    try {
      renameSync(staging, dir);
    } catch {
      // Another test file installed the same tarball meanwhile: use that one.
      rmSync(staging, { recursive: true, force: true });
    }
  }
  rmSync(packDir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return result(join(dir, packed.filename));
}
