/**
 * Where the service may POST (webhooks, CIBA ping endpoints): https only; with
 * ALLOW_HTTP_WEBHOOKS=true (local testing) also http://127.0.0.1 and http://localhost on any port.
 */
export function isAllowedWebhookUrl(value: string, allowHttpLoopback: boolean): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.username || url.password) return false;
  if (url.protocol === "https:") return true;
  return allowHttpLoopback && url.protocol === "http:" && (url.hostname === "127.0.0.1" || url.hostname === "localhost");
}
