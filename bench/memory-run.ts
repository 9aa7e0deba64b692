/**
 * `npm run bench:memory [-- --ttl N]`: the full bench's memory and expiry run alone (10,000 pending
 * requests, bench/memory.ts), written into bench/results.json's `memory` (marked with its own command
 * and date); the rest of results.json is left as it was. TTL default 244 s (as the last full run
 * chose from its issuance rate); it must exceed the time issuing 10,000 takes.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { measureMemoryAndExpiry } from "./memory.ts";
import { ROOT } from "./runtime.ts";

const ttlArg = process.argv.indexOf("--ttl");
const ttl = ttlArg > 0 ? Number(process.argv[ttlArg + 1]) : 244;
const started = Date.now();
const log = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);
const memory = await measureMemoryAndExpiry(ttl, log);
const file = join(ROOT, "bench/results.json");
const results = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
results.memory = { ...memory, run_alone: { command: `npm run bench:memory -- --ttl ${ttl}`, date: new Date(started).toISOString() } };
await writeFile(file, JSON.stringify(results, null, 2) + "\n");
log(`rows left ${memory.expiry.request_rows_left_in_storage} (past their expiry ${memory.expiry.expired_rows_left_in_storage}), tombstones ${memory.expiry.tombstones_left_in_storage}, SQLite files scanned ${memory.expiry.sqlite_files_scanned}; wrote bench/results.json`);
