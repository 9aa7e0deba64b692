// `sdk/` packs into an installable `keyferry` package. The tarball installs into a fresh
// project from the registry (its only dependency, jose), its types check under `tsc --strict` with
// `moduleResolution: nodenext`, the SDK imports at run time, and the bin runs through `npx`.
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, installedPackage, ROOT, type InstalledPackage } from "./support/installed-package";

const run = promisify(execFile);

const CONSUMER = `import { createClient, isKeyferryError, KeyferryError, type CredentialRequest, type KeyferryClient, type VaultItem } from "keyferry";

const client: KeyferryClient = createClient({ baseUrl: "https://keyferry.example", apiKey: "kf_example", masterSeed: new Uint8Array(32) });
export async function ask(): Promise<string> {
  const request: CredentialRequest = await client.credentials.request({ description: "Deploy token", vaultKey: "deploy-token" });
  const { vaultKey, credentialValue } = await client.credentials.waitForApproval(request.deviceCode, { timeout: 60_000 });
  const item: VaultItem = await client.vault.put(vaultKey, credentialValue);
  return item.updatedAt;
}
export function code(error: unknown): string | undefined {
  return isKeyferryError(error) ? error.code : error instanceof KeyferryError ? "never" : undefined;
}
// @ts-expect-error vaultKey is required
void client.credentials.request({ description: "no vault key" });
`;

const TSCONFIG = {
  compilerOptions: {
    strict: true,
    module: "nodenext",
    moduleResolution: "nodenext",
    target: "es2022",
    lib: ["es2023", "dom"],
    types: [],
    skipLibCheck: false,
    noEmit: true,
  },
  files: ["consumer.ts"],
};

/** Every package directory under node_modules (scoped ones counted once each). */
function installedPackages(dir: string): string[] {
  const names: string[] = [];
  for (const entry of readdirSync(join(dir, "node_modules"))) {
    if (entry.startsWith(".")) continue;
    if (entry.startsWith("@")) for (const scoped of readdirSync(join(dir, "node_modules", entry))) names.push(`${entry}/${scoped}`);
    else names.push(entry);
  }
  return names.sort();
}

function diskBytes(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((sum, entry) => sum + diskBytes(join(path, entry)), 0);
}

describe("the keyferry package from its tarball", () => {
  let pkg: InstalledPackage;

  beforeAll(async () => {
    pkg = await installedPackage();
  }, 300_000);

  it("installs only jose beside itself and ships no source or test files", () => {
    expect(installedPackages(pkg.dir)).toEqual(["jose", "keyferry"]);
    const manifest = JSON.parse(readFileSync(join(pkg.dir, "node_modules/keyferry/package.json"), "utf8")) as Record<string, unknown>;
    expect(manifest.name).toBe("keyferry");
    expect(manifest.engines).toEqual({ node: ">=22" });
    expect(Object.keys(manifest.dependencies as object)).toEqual(["jose"]);
    expect(readdirSync(join(pkg.dir, "node_modules/keyferry")).sort()).toEqual(["LICENSE", "README.md", "bin", "dist", "package.json"]);
    expect(readdirSync(join(pkg.dir, "node_modules/keyferry/dist")).sort()).toEqual(["cli.js", "index.d.ts", "index.js"]);
    // Measured for sdk/README.md: packed size, unpacked size, installed size of node_modules.
    console.log(
      `keyferry tarball ${pkg.packedBytes} B packed, ${pkg.unpackedBytes} B unpacked; ` +
        `node_modules ${installedPackages(pkg.dir).length} packages, ${diskBytes(join(pkg.dir, "node_modules"))} B`,
    );
  });

  it("type-checks a typed import under tsc --strict with moduleResolution nodenext", async () => {
    writeFileSync(join(pkg.dir, "consumer.ts"), CONSUMER);
    writeFileSync(join(pkg.dir, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2));
    const tsc = join(ROOT, "node_modules/typescript/bin/tsc");
    const outcome = await run(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: pkg.dir }).then(
      () => ({ code: 0, stdout: "" }),
      (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
    );
    expect(outcome.stdout).toBe("");
    expect(outcome.code).toBe(0);

    // And a type error is caught there: the check can fail.
    writeFileSync(join(pkg.dir, "consumer.ts"), `${CONSUMER}\nconst wrong: number = createClient({ baseUrl: "x", apiKey: "y" });\n`);
    await expect(run(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: pkg.dir })).rejects.toMatchObject({
      stdout: expect.stringMatching(/consumer\.ts\(\d+,\d+\): error TS2322/),
    });
    writeFileSync(join(pkg.dir, "consumer.ts"), CONSUMER);
  });

  it("imports at run time without touching the repository", async () => {
    const script = `import("keyferry").then((m) => { const c = m.createClient({ baseUrl: "http://127.0.0.1:9", apiKey: "kf_x" }); console.log(typeof c.credentials.request, Object.keys(m).sort().join(",")); })`;
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { cwd: pkg.dir });
    expect(stdout).toMatch(/^function .*createClient/);
    expect(stdout).toContain("KeyferryError");
    const bundle = readFileSync(join(pkg.dir, "node_modules/keyferry/dist/index.js"), "utf8");
    expect(bundle).not.toMatch(/from\s*["']\.\.?\//); // core/ is bundled in, not imported
    expect(bundle).not.toMatch(/["']node:/); // no Node-only module in the SDK entry
  });

  it("runs npx keyferry --version and --help from the installed package", async () => {
    const version = JSON.parse(readFileSync(join(ROOT, "sdk/package.json"), "utf8")).version as string;
    const { stdout } = await run("npx", ["--no-install", "keyferry", "--version"], { cwd: pkg.dir, env: cleanEnv() });
    expect(stdout).toBe(`${version}\n`);
    const help = await run("npx", ["--no-install", "keyferry", "--help"], { cwd: pkg.dir, env: cleanEnv() });
    expect(help.stdout).toContain("keyferry mcp [--allow-run]");
  });
});
