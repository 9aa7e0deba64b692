/**
 * "Push to this device" (README, "Push to your phone"): registers the console's service worker,
 * subscribes with the service's VAPID key and hands the subscription to the server; or undoes it.
 * A browser without push support (or with notifications blocked) is told so, and email still works.
 */
import { setText } from "../dom";
import type { PushKeyBody, PushSubscriptionCreatedBody } from "../../../core/wire";
import { getJson, sendJson } from "./api";
import type { Feedback } from "./feedback";

const SUBSCRIPTION_ID = "keyferry.push-subscription-id";

function keyBytes(base64url: string): Uint8Array<ArrayBuffer> {
  const binary = atob(base64url.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

export function pushControls(feedback: Feedback): void {
  const state = document.getElementById("push-state") as HTMLElement;
  const toggle = document.getElementById("push-toggle") as HTMLButtonElement;
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    setText(state, "This browser cannot receive push notifications; requests still reach you by email.");
    return;
  }
  const show = (on: boolean) => {
    setText(state, on ? "This browser shows a notification for each new request." : "Get a notification on this device for each new request.");
    setText(toggle, on ? "Turn off push notifications" : "Turn on push notifications");
    toggle.dataset.on = String(on);
    toggle.hidden = false;
  };

  const registration = navigator.serviceWorker.register("/console-sw.js");
  void registration.then(async (worker) => show((await worker.pushManager.getSubscription()) !== null)).catch(() => {
    setText(state, "Push notifications could not be set up in this browser.");
  });

  toggle.addEventListener("click", () => {
    toggle.disabled = true;
    void (toggle.dataset.on === "true" ? turnOff() : turnOn()).finally(() => {
      toggle.disabled = false;
    });
  });

  async function turnOn(): Promise<void> {
    if ((await Notification.requestPermission()) !== "granted") return feedback.error("Notifications are blocked for this site in your browser's settings.");
    const key = await getJson<PushKeyBody>("/v1/console/push");
    if (!key.ok) return feedback.error(key.failure.description);
    try {
      const worker = await registration;
      const subscription = await worker.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key.value.application_server_key) });
      const saved = await sendJson<PushSubscriptionCreatedBody>("POST", "/v1/console/push-subscriptions", subscription.toJSON());
      if (!saved.ok) {
        await subscription.unsubscribe();
        return feedback.error(saved.failure.description);
      }
      localStorage.setItem(SUBSCRIPTION_ID, saved.value.subscription_id);
      feedback.status("Push notifications are on for this browser.");
      show(true);
    } catch {
      feedback.error("This browser's push service could not be reached.");
    }
  }

  async function turnOff(): Promise<void> {
    const subscription = await (await registration).pushManager.getSubscription();
    await subscription?.unsubscribe();
    const id = localStorage.getItem(SUBSCRIPTION_ID);
    if (id) await sendJson("DELETE", `/v1/console/push-subscriptions/${encodeURIComponent(id)}`);
    localStorage.removeItem(SUBSCRIPTION_ID);
    feedback.status("Push notifications are off for this browser.");
    show(false);
  }
}
