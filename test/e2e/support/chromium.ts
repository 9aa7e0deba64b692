// The system Chromium (Debian package) driven by playwright-core, for the browser tests.
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

const EXECUTABLE = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

/**
 * Whether browser tests can run. Use as `describe.skipIf(!browserAvailable())`. Without a browser
 * they are skipped with a visible notice, except in CI (`CI=true`), where a missing browser throws
 * so the run fails instead of passing with the browser tests quietly skipped.
 */
export function browserAvailable(): boolean {
  if (existsSync(EXECUTABLE)) return true;
  const message = `Chromium not found at ${EXECUTABLE}: install it with \`apt-get install -y chromium\` (or set CHROMIUM_PATH)`;
  if (process.env.CI === "true") throw new Error(`${message}; browser tests are required in CI.`);
  console.warn(`\n*** SKIPPING BROWSER TESTS: ${message}. ***\n`);
  return false;
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: EXECUTABLE, args: ARGS, headless: true, timeout: 30_000 });
}
