import { byId } from "./dom";

/** The elements the page only reads or writes as HTMLElement; each is named by its id in camelCase. */
const PLAIN_IDS = [
  "step-lookup",
  "step-review",
  "step-done",
  "lookup-intro",
  "link-intro",
  "code-field",
  "email-field",
  "review-title",
  "time-left",
  "agent-name",
  "agent-email",
  "account-row",
  "account-name",
  "account-email",
  "account-id",
  "user-code-row",
  "shown-user-code",
  "vault-key",
  "description",
  "binding-row",
  "binding-message",
  "e2e-box",
  "passkey-box",
  "no-passkey-warning",
  "approvals-box",
  "approvals-count",
  "approvers",
  "signs-stored",
  "credential-field",
  "fingerprint",
  "credential-count",
  "done-title",
  "done-text",
  "status",
  "error",
] as const;

/** `time-left` → `timeLeft`, as a type and as a function. */
type CamelCase<S extends string> = S extends `${infer Head}-${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;
const camelCase = (id: string) => id.replace(/-(.)/g, (_, letter: string) => letter.toUpperCase());

type PlainElements = { [Id in (typeof PLAIN_IDS)[number] as CamelCase<Id>]: HTMLElement };

/** Every element the page drives, found once; index.html guarantees each id. */
export function findElements() {
  const plain = Object.fromEntries(PLAIN_IDS.map((id) => [camelCase(id), byId(id)])) as PlainElements;
  return {
    ...plain,
    lookupForm: byId<HTMLFormElement>("lookup-form"),
    userCode: byId<HTMLInputElement>("user-code"),
    email: byId<HTMLInputElement>("email"),
    continueButton: byId<HTMLButtonElement>("continue"),
    decideForm: byId<HTMLFormElement>("decide-form"),
    credential: byId<HTMLTextAreaElement>("credential"),
    toggleVisibility: byId<HTMLButtonElement>("toggle-visibility"),
    approve: byId<HTMLButtonElement>("approve"),
    deny: byId<HTMLButtonElement>("deny"),
  };
}

export type Elements = ReturnType<typeof findElements>;
