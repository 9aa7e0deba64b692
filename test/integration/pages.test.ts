import { describe, expect, it } from "vitest";
import { call, type Answer } from "./support/api";

describe("approval page", () => {
  it("is served with strict security headers and never cached, whatever the query", async () => {
    for (const path of ["/approve", "/approve?user_code=WDJB-MJHT", "/approve#link=abc"]) {
      const page = await call("GET", path);
      expect(page.status).toBe(200);
      expect(page.headers.get("Content-Type")).toContain("text/html");
      const csp = page.headers.get("Content-Security-Policy")!;
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain("unsafe-inline");
      expect(page.headers.get("Referrer-Policy")).toBe("no-referrer");
      expect(page.headers.get("Cache-Control")).toBe("no-store");
      expect(page.headers.get("Strict-Transport-Security")).toContain("max-age=");
      expect(page.headers.get("X-Content-Type-Options")).toBe("nosniff");
    }
  });

  it("decides nothing on GET: opening a link is not consuming it", async () => {
    const page = await call<Answer>("GET", "/approve?user_code=WDJB-MJHT&decision=approve");
    expect(page.status).toBe(200);
    expect(typeof page.body).toBe("string");
  });
});
