// Scans for a credential in the clear: every file a `wrangler dev` persisted (its SQLite databases
// and journals), in every encoding that would reveal it. Used by plaintext-scan.test.ts and
// saved-credentials.test.ts.
import { randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

/** A value no file could contain by chance. */
export function distinctiveSecret(): string {
  return `kf-plaintext-canary-${randomBytes(24).toString("hex")}`;
}

/**
 * Byte patterns that would reveal the value: itself, its hex, and its base64 and base64url at each of
 * the three alignments it could have inside a longer encoded blob (the edge groups are dropped).
 */
function needles(value: string): Buffer[] {
  const bytes = Buffer.from(value, "utf8");
  const patterns = [bytes, Buffer.from(bytes.toString("hex")), Buffer.from(bytes.toString("hex").toUpperCase())];
  for (const shift of [0, 1, 2]) {
    const shifted = Buffer.concat([Buffer.alloc(shift), bytes]);
    for (const encoding of ["base64", "base64url"] as const) {
      const encoded = shifted.toString(encoding);
      patterns.push(Buffer.from(encoded.slice(shift === 0 ? 0 : 4, encoded.length - 4)));
    }
  }
  return patterns;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

/** The persisted files (and how many were scanned) that contain any encoding of the value. */
export async function filesRevealing(dir: string, value: string): Promise<{ scanned: number; revealing: string[] }> {
  const patterns = needles(value);
  const files = await filesUnder(dir);
  const revealing: string[] = [];
  for (const file of files) {
    let content: Buffer;
    try {
      content = await readFile(file);
    } catch {
      continue; // removed while we walked (e.g. a SQLite journal)
    }
    if (patterns.some((pattern) => content.includes(pattern))) revealing.push(file);
  }
  return { scanned: files.length, revealing };
}
