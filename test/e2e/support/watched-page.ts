// A browser page that records what hostile input could make it do: dialogs, page errors, console
// errors and every CSP violation from before the page's first script.
import type { Browser } from "playwright-core";

declare global {
  interface Window {
    __pwned?: unknown;
    __violations?: string[];
  }
}

export async function watchedPage(browser: Browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const dialogs: string[] = [];
  const errors: string[] = [];
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  await page.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (event) => {
      window.__violations?.push(`${event.violatedDirective} ${event.blockedURI}`);
    });
  });
  return { context, page, dialogs, errors };
}
