/// <reference types="vite/client" />
// Comments cite README sections by heading, in one form: `README, "Heading"` for the project's
// README.md, `<folder>/README.md, "Heading"` for any other (`sdk/README.md, "CLI"`), further headings
// joined by `and` (`README, "A" and "B"`). Every cited heading must exist, so a renamed section
// fails here instead of leaving comments that point nowhere. Vite reads the files when it bundles
// this test (import.meta.glob), since the test itself runs inside workerd, which has no file system.
import { describe, expect, it } from "vitest";

interface Citation {
  line: number;
  readme: string;
  heading: string;
}

/** Backticks dropped and a call's arguments elided: "`createClient(options)`" is cited as "createClient()". */
const normalise = (heading: string) => heading.replaceAll("`", "").replace(/\(.*\)/, "()").trim();

/** A markdown file's headings, outside fenced code (a `# comment` in a shell example is not one). */
function headingsOf(markdown: string): string[] {
  let fenced = false;
  const found: string[] = [];
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    const heading = !fenced && /^#{1,6}\s+(.+)$/.exec(line);
    if (heading) found.push(normalise(heading[1]!));
  }
  return found;
}

const lineOf = (text: string, index: number) => text.slice(0, index).split("\n").length;
/** A quoted heading may wrap onto the next comment line. */
const unwrap = (quoted: string) => quoted.replace(/\s*\n\s*(?:\*|\/\/|#)?\s*/g, " ");

const CITATION = /(?<![\w/.-])(README|(?:[\w-]+\/)+README\.md), "([^"]{1,120})"((?: and "[^"]{1,120}")*)/g;

function citationsIn(text: string): Citation[] {
  return [...text.matchAll(CITATION)].flatMap((match) => {
    const [, readme, first, more] = match;
    const quoted = [first!, ...[...more!.matchAll(/"([^"]+)"/g)].map((m) => m[1]!)];
    return quoted.map((heading) => ({ line: lineOf(text, match.index), readme: readme!, heading: unwrap(heading) }));
  });
}

/** The forms that drifted before: the root README as `README.md, "…"`, a folder's as `sdk/README, "…"`, no comma. */
const STRAY = /(?<![\w/.-])(?:README\.md,? "|README "|(?:[\w-]+\/)+README,? "|(?:[\w-]+\/)+README\.md ")/g;

function nonCanonicalCitationsIn(text: string): Array<{ line: number; text: string }> {
  return [...text.matchAll(STRAY)].map((match) => ({ line: lineOf(text, match.index), text: text.slice(match.index, match.index + 60).split("\n")[0]! }));
}

const READMES: Record<string, string> = import.meta.glob(["../../README.md", "../../*/README.md", "../../*/*/README.md", "!../../node_modules/**"], {
  query: "?raw",
  import: "default",
  eager: true,
});
const SOURCES: Record<string, string> = import.meta.glob(
  ["../../{worker,core,durable-objects,approval-ui/src,sdk/src,sdk/bin,bench,scripts,test}/**/*.{ts,mjs,js,css,html}", "../../*.{ts,toml}", "!**/node_modules/**", "!**/dist/**", "!./readme-citations.test.ts"],
  { query: "?raw", import: "default", eager: true },
);

/** The glob's key (`../../sdk/README.md`) as the citation names the file (`sdk/README.md`; the root one is `README`). */
const readmeName = (key: string) => (key === "../../README.md" ? "README" : key.slice("../../".length));
const sourceName = (key: string) => key.slice("../../".length);
const headings = new Map(Object.entries(READMES).map(([key, text]) => [readmeName(key), headingsOf(text)]));

const citations: Array<Citation & { file: string }> = Object.entries(SOURCES).flatMap(([key, text]) =>
  citationsIn(text).map((citation) => ({ ...citation, file: sourceName(key) })),
);

describe("README sections named in comments", () => {
  it("finds the READMEs and the citations (the globs are not empty)", () => {
    expect([...headings.keys()]).toEqual(expect.arrayContaining(["README", "sdk/README.md", "bench/README.md"]));
    expect(headings.get("README")).toContain("Contract notes");
    expect(citations.length).toBeGreaterThan(30);
  });

  it("reads citations in the one form, and flags the others", () => {
    const comment = '/** Why (README, "A handoff" and "Contract\n * notes"; sdk/README.md, "CLI"). */\n// README "Old" README.md, "Old" sdk/README, "Old"';
    expect(citationsIn(comment).map(({ readme, heading }) => `${readme}: ${heading}`)).toEqual(["README: A handoff", "README: Contract notes", "sdk/README.md: CLI"]);
    expect(nonCanonicalCitationsIn(comment).map(({ line }) => line)).toEqual([3, 3, 3]);
    expect(headingsOf("# T\n```sh\n# not a heading\n```\n### `createClient(options)`")).toEqual(["T", "createClient()"]);
  });

  it("every cited heading exists in the README it names", () => {
    const broken = citations
      .filter(({ readme, heading }) => !headings.get(readme)?.includes(normalise(heading)))
      .map(({ file, line, readme, heading }) => `${file}:${line} cites ${readme}, "${heading}"`);
    expect(broken).toEqual([]);
  });

  it("every citation uses the one form", () => {
    const stray = Object.entries(SOURCES).flatMap(([key, text]) =>
      nonCanonicalCitationsIn(text).map(({ line, text: found }) => `${sourceName(key)}:${line}: ${found}`),
    );
    expect(stray).toEqual([]);
  });
});
