// The console's service worker in real Chromium (README, "Push to your phone"): a push delivered
// through CDP (`ServiceWorker.deliverPushMessage`) shows a notification naming who asks and for
// what; tapping it opens the console at that request, and never a URL of another origin.
import { describe, expect, it } from "vitest";
import { browserAvailable } from "./support/chromium";
import { sleep } from "../support/sleep";
import { useBrowser } from "./support/use-browser";
import { useDevServer } from "./support/use-dev-server";

interface ShownNotification {
  title: string;
  body: string;
  tag: string;
  data: { url: string };
}

describe.skipIf(!browserAvailable())("console service worker", () => {
  const server = useDevServer({ publicHost: "localhost" });
  const browser = useBrowser();

  async function consoleWithWorker() {
    const origin = server.publicUrl;
    const context = await browser.newContext();
    await context.grantPermissions(["notifications"], { origin });
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    const registrations = new Map<string, string>();
    cdp.on("ServiceWorker.workerRegistrationUpdated", ({ registrations: updated }: { registrations: Array<{ registrationId: string; scopeURL: string }> }) => {
      for (const registration of updated) registrations.set(registration.scopeURL, registration.registrationId);
    });
    // A push is delivered to an activated worker only: wait for that, not just for the registration.
    let activated = false;
    cdp.on("ServiceWorker.workerVersionUpdated", ({ versions }: { versions: Array<{ status: string }> }) => {
      if (versions.some((version) => version.status === "activated")) activated = true;
    });
    await cdp.send("ServiceWorker.enable");
    await page.goto(`${origin}/console`);
    await page.evaluate(async () => {
      await navigator.serviceWorker.register("/console-sw.js");
      await navigator.serviceWorker.ready;
    });
    for (let i = 0; i < 150 && !(registrations.has(`${origin}/`) && activated); i++) await sleep(100);
    const registrationId = registrations.get(`${origin}/`);
    expect(registrationId, [...registrations.keys()].join(", ")).toBeDefined();
    expect(activated).toBe(true);
    const push = (data: unknown) => cdp.send("ServiceWorker.deliverPushMessage", { origin, registrationId: registrationId!, data: JSON.stringify(data) });
    const shown = async (): Promise<ShownNotification[]> =>
      page.evaluate(async () =>
        (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data as { url: string } })),
      );
    /**
     * Delivers a push until the worker has shown what `seen` looks for (at most 3 deliveries, 15 s in
     * all). CDP hands the message over without an answer; on a busy CI machine Chromium twice dropped
     * one delivered while the worker was starting, where a real push service would deliver it again
     * (RFC 8030 §5: until the user agent acknowledges it). A notification replaces another of its tag.
     */
    const pushUntil = async (data: unknown, seen: (notifications: ShownNotification[]) => boolean): Promise<ShownNotification[]> => {
      for (let delivery = 0; delivery < 3; delivery++) {
        await push(data);
        for (let i = 0; i < 50; i++) {
          const notifications = await shown();
          if (seen(notifications)) return notifications;
          await sleep(100);
        }
      }
      return shown();
    };
    return { context, page, push, pushUntil, shown, origin };
  }

  const pushed = (origin: string, url: string) => ({
    type: "credential.requested",
    request_id: "req_abcdefghijkmnpqrstuv",
    agent: { name: "deploy-bot <b>" },
    description: "Stripe <img src=x onerror=alert(1)> key",
    vault_key: "stripe-sk",
    expires_at: new Date(Date.now() + 600_000).toISOString(),
    url: url.replace("ORIGIN", origin),
  });

  it("shows each pushed request as a notification, agent text as plain text", async () => {
    const { push, pushUntil, shown, origin } = await consoleWithWorker();
    const notifications = await pushUntil(pushed(origin, "ORIGIN/console#request=req_abcdefghijkmnpqrstuv"), (shownNow) => shownNow.length > 0);
    expect(notifications).toEqual([
      {
        title: "deploy-bot <b> asks for stripe-sk",
        body: "Stripe <img src=x onerror=alert(1)> key",
        tag: "req_abcdefghijkmnpqrstuv",
        data: { url: `${origin}/console#request=req_abcdefghijkmnpqrstuv` },
      },
    ]);
    // Anything that is not a pushed request shows nothing.
    await push({ type: "something.else" });
    await sleep(500);
    expect(await shown()).toHaveLength(1);
  });

  it("a tap opens the console at the request; a foreign URL in a push opens the console, not that URL", async () => {
    const { context, page, pushUntil, origin } = await consoleWithWorker();
    const foreign = await pushUntil(pushed(origin, "https://evil.example/console#request=x"), (shownNow) => shownNow.length > 0);
    expect(foreign[0]?.data.url).toBe(`${origin}/console`);

    await pushUntil(pushed(origin, "ORIGIN/console#request=req_abcdefghijkmnpqrstuv"), (shownNow) => shownNow.some((n) => n.data.url.includes("#request=")));
    const [worker] = context.serviceWorkers();
    expect(worker).toBeDefined();
    // A tap, as the browser reports it to the worker: a notificationclick event for that notification.
    await worker!.evaluate(async () => {
      const scope = self as unknown as { registration: { getNotifications(): Promise<Notification[]> }; dispatchEvent(event: Event): boolean };
      const notification = (await scope.registration.getNotifications()).find((n) => String((n.data as { url: string }).url).includes("#request="));
      const Click = (globalThis as unknown as { NotificationEvent: new (type: string, init: { notification: Notification }) => Event }).NotificationEvent;
      scope.dispatchEvent(new Click("notificationclick", { notification: notification! }));
    });
    await page.waitForURL(`${origin}/console#request=req_abcdefghijkmnpqrstuv`);
  });
});
