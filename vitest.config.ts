import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Two projects: the worker and its Durable Objects inside workerd, and end-to-end tests in Node
// against a real `wrangler dev` on loopback (real client libraries, a real browser).
export default defineConfig({
  test: {
    projects: [
      {
        plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.toml" }, miniflare: { bindings: { ADMIN_TOKEN: "test-admin-token-of-at-least-32-characters", TOKEN_SIGNING_KEY: "dGVzdC1zaWduaW5nLWtleS10ZXN0LXNpZ25pbmcta2V5", REQUEST_TTL_SECONDS: "600", PUBLIC_BASE_URL: "https://keyferry.test", VAPID_SUBJECT: "mailto:ops@keyferry.test", VAPID_PRIVATE_KEY: JSON.stringify({ kty: "EC", crv: "P-256", x: "GURxARmhN3_1bNgg-ihyI8zRiMY9ilzn51y7oBXjAgc", y: "skeEj5O1ZXrKcushGPhYLjzRWi0mIm7Opz79QpNyb9s", d: "QI-Ij0uK__CsxydSj9jgaUWiiZZwaIDK8jEgKoQWsO0" }) } } })],
        // A generous timeout: on two shared cores a workerd round trip can take seconds; nothing here asserts time.
        test: { name: "workers", include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"], testTimeout: 30_000 },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
