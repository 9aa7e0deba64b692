import { describe, expect, it } from "vitest";
import { isAllowedWebhookUrl } from "../../worker/webhook-url";

/** The one filter on every URL the service POSTs to (webhooks, CIBA ping endpoints), every spelling of each form. */
const REFUSED: Array<[string, string]> = [
  ["localhost with a trailing dot", "https://localhost./hook"],
  ["localhost, percent-encoded dot", "https://localhost%2E/hook"],
  ["localhost, lower-case percent-encoding", "https://LOCALHOST%2e/hook"],
  ["localhost, two trailing dots", "https://localhost../hook"],
  ["localhost, encoded letter", "https://%6cocalhost/hook"],
  ["a .localhost name with a trailing dot", "https://a.localhost./hook"],
  ["loopback, percent-encoded dots", "https://127%2E0%2E0%2E1/hook"],
  ["loopback with a trailing dot", "https://127.0.0.1./hook"],
  ["loopback as one number", "https://2130706433/hook"],
  ["IPv4-translated ::ffff:0:a.b.c.d", "https://[::ffff:0:8.8.8.8]/hook"],
  ["IPv4-translated, hex", "https://[::ffff:0:a00:1]/hook"],
  ["IPv4-mapped private", "https://[::ffff:10.0.0.1]/hook"],
  ["local-use NAT64 64:ff9b:1::/48", "https://[64:ff9b:1::8.8.8.8]/hook"],
  ["local-use NAT64, high end", "https://[64:ff9b:1:ffff:ffff:ffff:ffff:ffff]/hook"],
  ["NAT64 of a private address", "https://[64:ff9b::10.0.0.1]/hook"],
  ["Teredo 2001::/32", "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook"],
  ["Teredo, short", "https://[2001::1]/hook"],
  ["documentation 192.0.2.0/24", "https://192.0.2.10/hook"],
  ["documentation 198.51.100.0/24", "https://198.51.100.7/hook"],
  ["documentation 203.0.113.0/24", "https://203.0.113.255/hook"],
  ["documentation 2001:db8::/32", "https://[2001:db8::1]/hook"],
  ["documentation 3fff::/20", "https://[3fff::1]/hook"],
  ["documentation 3fff::/20, high end", "https://[3fff:fff:ffff::1]/hook"],
  ["another port (redis)", "https://hooks.example.com:6379/hook"],
  ["another port (8080)", "https://hooks.example.com:8080/hook"],
  ["another port with a trailing dot", "https://hooks.example.com.:22/hook"],
  ["http", "http://hooks.example.com/hook"],
  ["the metadata address", "https://169.254.169.254/latest"],
  ["credentials in the URL", "https://user:pass@hooks.example.com/hook"],
  ["not a URL", "hooks.example.com/hook"],
];

const ALLOWED: Array<[string, string]> = [
  ["a public name", "https://hooks.example.com/hook"],
  ["a public name with a trailing dot", "https://hooks.example.com./hook"],
  ["port 443 spelled out", "https://hooks.example.com:443/hook"],
  ["port 8443", "https://hooks.example.com:8443/hook"],
  ["a public IPv4", "https://8.8.8.8/hook"],
  ["a public IPv6", "https://[2606:4700::1111]/hook"],
  ["next to documentation: 3fff:1000::", "https://[3fff:1000::1]/hook"],
  ["next to Teredo: 2001:1::", "https://[2001:1::1]/hook"],
  ["next to documentation: 203.0.114.1", "https://203.0.114.1/hook"],
  ["IPv4-mapped public", "https://[::ffff:8.8.8.8]/hook"],
];

describe("isAllowedWebhookUrl", () => {
  it.each(REFUSED)("refuses %s", (_name, url) => {
    expect(isAllowedWebhookUrl(url, false)).toBe(false);
  });

  it.each(ALLOWED)("allows %s", (_name, url) => {
    expect(isAllowedWebhookUrl(url, false)).toBe(true);
  });

  it("allows loopback on any port, by http or https, only under ALLOW_HTTP_WEBHOOKS=true", () => {
    const loopback = ["http://127.0.0.1:8787/hook", "https://localhost:6379/hook", "http://localhost./hook", "http://127.0.0.1/hook"];
    for (const url of loopback) {
      expect({ url, allowed: isAllowedWebhookUrl(url, true) }).toEqual({ url, allowed: true });
      expect({ url, allowed: isAllowedWebhookUrl(url, false) }).toEqual({ url, allowed: false });
    }
    // The switch opens loopback only: not another port on a public host, not another internal range.
    for (const url of ["https://hooks.example.com:6379/hook", "http://10.0.0.1:8080/hook", "https://[2001:db8::1]/hook"]) {
      expect({ url, allowed: isAllowedWebhookUrl(url, true) }).toEqual({ url, allowed: false });
    }
  });
});
