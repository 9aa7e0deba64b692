// Bundles the SDK (runtime-neutral ESM) and the CLI (one self-contained file for Node 20+) into
// sdk/dist. Runs from the root package's `prepare` script, so `npm install` leaves a working `npx keyferry`.
import { chmodSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const { version } = JSON.parse(readFileSync(join(here, "..", "package.json"), "utf8"));
const common = { bundle: true, format: "esm", legalComments: "none", logLevel: "warning" };

await build({
  ...common,
  entryPoints: [join(here, "src/index.ts")],
  outfile: join(here, "dist/index.js"),
  platform: "neutral",
  target: "es2022",
});

const cli = join(here, "dist/cli.js");
await build({
  ...common,
  entryPoints: [join(here, "src/cli.ts")],
  outfile: cli,
  platform: "node",
  target: "node20",
  define: { KEYFERRY_VERSION: JSON.stringify(version) },
});
chmodSync(cli, 0o755);
