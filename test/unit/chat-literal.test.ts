// Agent text in a Slack-format webhook (README, "Webhooks into a chat tool") forms no link, mention
// or formatting in any listed dialect: Slack mrkdwn, Mattermost / Rocket.Chat Markdown, Discord.
import { describe, expect, it } from "vitest";
import { chatLiteral } from "../../durable-objects/account/notify/webhook-body";

/** What each dialect would read as markup outside a code span. */
const HOSTILE: Array<[dialect: string, text: string]> = [
  ["Slack mention", "<!channel> please approve"],
  ["Slack link", "<https://evil.example|Approve here>"],
  ["Slack user", "<@U123> says ok"],
  ["Markdown masked link", "[Approve here](https://evil.example/approve)"],
  ["Markdown autolink", "see <https://evil.example>"],
  ["Mattermost / Discord mention", "@channel @here @everyone"],
  ["leading mention", "@all approve now"],
  ["channel link", "#general is where it happens"],
  ["bold / italic / strike", "*bold* _italic_ ~strike~ **really**"],
  ["code span escape", "`closing` the span early ``twice``"],
  ["HTML entity", "&lt;!channel&gt;"],
  ["newline into a quote", "ok\n> @here forged line"],
];

/** The text between the code span's backticks, and what may not appear there. */
function inside(literal: string): string {
  expect(literal.startsWith("`") && literal.endsWith("`")).toBe(true);
  return literal.slice(1, -1);
}

describe("chatLiteral", () => {
  it.each(HOSTILE)("%s: one code span, no backtick, no < > or raw &, one line", (_dialect, text) => {
    const body = inside(chatLiteral(text));
    expect(body).not.toContain("`");
    expect(body).not.toMatch(/[<>\r\n]/);
    expect(body).not.toMatch(/&(?!amp;|lt;|gt;)/);
    expect(body.length).toBeGreaterThan(0);
  });

  it("keeps the words readable", () => {
    expect(chatLiteral("[Approve here](https://evil.example)")).toBe("`[Approve here](https://evil.example)`");
    expect(chatLiteral("a & <b>")).toBe("`a &amp; &lt;b&gt;`");
    expect(chatLiteral("")).toBe("`(empty)`");
  });
});
