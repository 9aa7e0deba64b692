/**
 * The console's service worker (README, "Push to your phone"): shows each pushed request as a
 * notification and opens the console at that request when it is tapped. A push says who asks and
 * for what, never a secret; its text is shown as notification text, which no browser renders as markup.
 * Typed by hand: the page's tsconfig has the DOM library, which cannot be mixed with the worker one.
 */
interface PushedRequest {
  type: "credential.requested";
  request_id: string;
  agent: { name: string };
  description: string;
  vault_key: string;
  url: string;
}
interface ExtendableEvent extends Event {
  waitUntil(work: Promise<unknown>): void;
}
interface PushEvent extends ExtendableEvent {
  data: { json(): unknown } | null;
}
interface NotificationEvent extends ExtendableEvent {
  notification: Notification;
}
interface WindowClient {
  url: string;
  focus(): Promise<WindowClient>;
  navigate(url: string): Promise<WindowClient | null>;
}
interface ServiceWorkerScope {
  location: Location;
  registration: { showNotification(title: string, options: NotificationOptions): Promise<void> };
  clients: { matchAll(options: { type: "window" }): Promise<WindowClient[]>; openWindow(url: string): Promise<WindowClient | null>; claim(): Promise<void> };
  addEventListener(type: "push", listener: (event: PushEvent) => void): void;
  addEventListener(type: "notificationclick", listener: (event: NotificationEvent) => void): void;
  addEventListener(type: "activate", listener: (event: ExtendableEvent) => void): void;
}

const scope = self as unknown as ServiceWorkerScope;

function pushedRequest(event: PushEvent): PushedRequest | null {
  try {
    const data = event.data?.json() as Partial<PushedRequest> | undefined;
    return data?.type === "credential.requested" && typeof data.request_id === "string" ? (data as PushedRequest) : null;
  } catch {
    return null;
  }
}

/** Only a console URL of this origin is opened: a notification never navigates anywhere else. */
function consoleUrl(raw: unknown): string {
  const fallback = new URL("/console", scope.location.origin);
  if (typeof raw !== "string") return fallback.href;
  const url = new URL(raw, scope.location.origin);
  return url.origin === scope.location.origin && url.pathname === "/console" ? url.href : fallback.href;
}

// Take over the console tabs already open, so a tap can bring one of them to the request
// (WindowClient.navigate works only on a tab this worker controls).
scope.addEventListener("activate", (event) => event.waitUntil(scope.clients.claim()));

scope.addEventListener("push", (event) => {
  const request = pushedRequest(event);
  if (!request) return;
  event.waitUntil(
    scope.registration.showNotification(`${request.agent.name} asks for ${request.vault_key}`, {
      body: request.description,
      tag: request.request_id,
      requireInteraction: true,
      data: { url: consoleUrl(request.url) },
    }),
  );
});

scope.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = consoleUrl((event.notification.data as { url?: unknown } | null)?.url);
  event.waitUntil(
    (async () => {
      const open = (await scope.clients.matchAll({ type: "window" })).find((client) => new URL(client.url).pathname === "/console");
      if (open) return (await open.navigate(url))?.focus() ?? open.focus();
      return scope.clients.openWindow(url);
    })(),
  );
});
