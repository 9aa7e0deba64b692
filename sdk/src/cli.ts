#!/usr/bin/env node
import { main } from "./cli/main";

process.on("uncaughtException", (error) => {
  process.stderr.write(`keyferry: unexpected internal error (${error.name})\n`);
  process.exit(70);
});
main(process.argv.slice(2), process.env).then((code) => {
  process.exitCode = code;
  // Every command has finished its work here. Exit once stdout and stderr are flushed rather than when
  // the event loop drains: a return-channel socket can outlive the wait, since RFC 6455 §7.1.1 leaves
  // closing the TCP connection to the server, and local workerd keeps it until the object is evicted.
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
});
