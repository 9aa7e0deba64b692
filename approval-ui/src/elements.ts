import { byId } from "./dom";

/** Every element the page drives, found once; index.html guarantees each id. */
export function findElements() {
  return {
    stepLookup: byId("step-lookup"),
    stepReview: byId("step-review"),
    stepDone: byId("step-done"),
    lookupIntro: byId("lookup-intro"),
    linkIntro: byId("link-intro"),
    lookupForm: byId<HTMLFormElement>("lookup-form"),
    codeField: byId("code-field"),
    emailField: byId("email-field"),
    userCode: byId<HTMLInputElement>("user-code"),
    email: byId<HTMLInputElement>("email"),
    continueButton: byId<HTMLButtonElement>("continue"),
    reviewTitle: byId("review-title"),
    timeLeft: byId("time-left"),
    agentName: byId("agent-name"),
    agentEmail: byId("agent-email"),
    accountRow: byId("account-row"),
    accountName: byId("account-name"),
    accountEmail: byId("account-email"),
    accountId: byId("account-id"),
    userCodeRow: byId("user-code-row"),
    shownUserCode: byId("shown-user-code"),
    vaultKey: byId("vault-key"),
    description: byId("description"),
    bindingRow: byId("binding-row"),
    bindingMessage: byId("binding-message"),
    e2eBox: byId("e2e-box"),
    fingerprint: byId("fingerprint"),
    decideForm: byId<HTMLFormElement>("decide-form"),
    credential: byId<HTMLTextAreaElement>("credential"),
    credentialCount: byId("credential-count"),
    toggleVisibility: byId<HTMLButtonElement>("toggle-visibility"),
    approve: byId<HTMLButtonElement>("approve"),
    deny: byId<HTMLButtonElement>("deny"),
    doneTitle: byId("done-title"),
    doneText: byId("done-text"),
    status: byId("status"),
    error: byId("error"),
  };
}

export type Elements = ReturnType<typeof findElements>;
