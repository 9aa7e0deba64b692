/**
 * The file's Chromium, set up like `useDevServer`: call it in a `describe` (after `useDevServer`),
 * use the returned browser inside tests and hooks. It registers the `beforeAll` that launches the
 * system Chromium (`launchBrowser()`) and the `afterAll` that closes it, and with it every context
 * and page the tests opened. Wrap the `describe` in `describe.skipIf(!browserAvailable())`.
 */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll } from "vitest";
import { launchBrowser } from "./chromium";

export function useBrowser(): Browser {
  let launched: Browser | undefined;
  beforeAll(async () => {
    launched = await launchBrowser();
  });
  afterAll(async () => {
    await launched?.close();
  });
  const running = (): Browser => {
    if (!launched) throw new Error("the browser is not launched yet: use it inside a test or hook");
    return launched;
  };
  // Every property of the launched browser, read when used (methods bound to it).
  return new Proxy({} as Browser, {
    get(_target, key) {
      const browser = running();
      const value: unknown = Reflect.get(browser, key, browser);
      return typeof value === "function" ? value.bind(browser) : value;
    },
  });
}
