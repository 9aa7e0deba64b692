// Builds the operator approval page: approval-ui/src -> approval-ui/dist.
//   dist/index.html          the page (the worker serves it for GET /approve)
//   dist/assets/app.js       main.ts + jose (browser build) + core/, one minified ES module
//   dist/assets/app.css      the stylesheet
//   dist/console-sw.js       the console's service worker (push notifications), at the root so its scope is the site
//   dist/console.html        the operator console (GET /console), with assets/console.js and .css
// Runs before `wrangler dev` / `deploy` (wrangler.toml [build]) and before `npm test`.
// Deterministic: no hashes, timestamps or absolute paths in the output. Files are overwritten in
// place (dist is never emptied) so a running `wrangler dev` never sees the page missing.
// Any error or warning exits non-zero.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "approval-ui", "src");
const dist = join(root, "approval-ui", "dist");

try {
  mkdirSync(join(dist, "assets"), { recursive: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: [
      { in: join(src, "main.ts"), out: "app" },
      { in: join(src, "app.css"), out: "app" },
      { in: join(src, "console", "main.ts"), out: "console" },
      { in: join(src, "console.css"), out: "console" },
    ],
    outdir: join(dist, "assets"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2020",
    minify: true,
    sourcemap: false,
    legalComments: "none",
    charset: "utf8",
    logLevel: "warning",
  });
  if (result.warnings.length > 0) throw new Error(`${result.warnings.length} esbuild warning(s), see above`);
  const worker = await build({
    absWorkingDir: root,
    entryPoints: [{ in: join(src, "service-worker.ts"), out: "console-sw" }],
    outdir: dist,
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "es2020",
    minify: true,
    legalComments: "none",
    charset: "utf8",
    logLevel: "warning",
  });
  if (worker.warnings.length > 0) throw new Error(`${worker.warnings.length} esbuild warning(s), see above`);
  copyFileSync(join(src, "index.html"), join(dist, "index.html"));
  copyFileSync(join(src, "console.html"), join(dist, "console.html"));
} catch (error) {
  console.error(`build-ui: failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
