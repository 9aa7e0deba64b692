// Stands in for the send_email binding in the benchmark: accepts the message and does nothing.
// Miniflare's local send_email parses every MIME message and writes it to an .eml file on the
// worker's own runtime, a simulator cost production does not have (there it is a remote call).
import { WorkerEntrypoint } from "cloudflare:workers";

export default class EmailStub extends WorkerEntrypoint {
  async send() {
    return { messageId: "bench-stub" };
  }

  async fetch() {
    return new Response(null, { status: 404 });
  }
}
