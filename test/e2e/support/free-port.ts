/** A loopback port free at the moment of asking (the OS picks it). Shared by the e2e support and bench/soak.ts. */
import { createServer } from "node:net";

export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => done(port));
    });
  });
}
