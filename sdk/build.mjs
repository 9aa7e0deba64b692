// Builds the `keyferry` package into sdk/dist:
// - index.js: the SDK, runtime-neutral ESM (fetch, WebCrypto, jose only; core/ is bundled in, jose is
//   the package's one runtime dependency and stays an import so it dedupes with the app's own jose);
// - index.d.ts: its types in one file (dts-bundle-generator), so `moduleResolution: nodenext`
//   consumers never meet an extensionless relative import;
// - cli.js: the `keyferry` bin for Node 22+, with the MCP server. The MCP SDK, zod and qrcode-terminal
//   are bundled in: only the stdio server is used, and its package would otherwise install ~90
//   packages (express, hono, ajv, ...) into every agent project.
// Runs from the root package's `prepare` script and from `npm pack` (prepack).
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateDtsBundle } from "dts-bundle-generator";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const { version } = JSON.parse(readFileSync(join(here, "package.json"), "utf8"));
const common = { bundle: true, format: "esm", legalComments: "none", logLevel: "warning", external: ["jose"] };

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
  target: "node22",
  define: { KEYFERRY_VERSION: JSON.stringify(version) },
  // Minified: the bundled zod and MCP SDK are most of it (no stack trace is ever printed).
  minify: true,
  // Bundled CommonJS dependencies (ajv, qrcode-terminal) call require(); give the ESM bundle one.
  banner: { js: 'import { createRequire as __kfCreateRequire } from "node:module"; const require = __kfCreateRequire(import.meta.url);' },
});
chmodSync(cli, 0o755);

if (!process.argv.includes("--no-types")) {
  const [types] = generateDtsBundle([{ filePath: join(here, "src/index.ts"), output: { noBanner: true, exportReferencedTypes: false } }], {
    preferredConfigPath: join(here, "tsconfig.types.json"),
  });
  writeFileSync(join(here, "dist/index.d.ts"), types);
}
