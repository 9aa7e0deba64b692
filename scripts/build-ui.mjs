// Placeholder until the approval page lands: keeps approval-ui/dist present.
import { mkdirSync, writeFileSync } from "node:fs";
mkdirSync("approval-ui/dist", { recursive: true });
writeFileSync("approval-ui/dist/index.html", "<!doctype html><title>Keyferry</title>");
