#!/usr/bin/env node
import { main } from "./cli/main";

process.on("uncaughtException", (error) => {
  process.stderr.write(`keyferry: unexpected internal error (${error.name})\n`);
  process.exit(70);
});
main(process.argv.slice(2), process.env).then((code) => {
  process.exitCode = code;
});
