import { MAX_CREDENTIAL_BYTES } from "../../core/limits";
import { approvalsLines, SIGNS_STORED } from "./approvals-text";
import { describeDuration, formatDuration } from "./countdown";
import { setText } from "./dom";
import type { Elements } from "./elements";
import type { DoneState, LookupState, PageState, ReviewState } from "./state";

const BUSY_LABEL = { encrypting: "Encrypting…", sending: "Sending…", denying: "Denying…" } as const;

/** Sets every control from the state: the one place the page's DOM changes (values the operator types aside). */
export function render(ui: Elements, state: PageState): void {
  ui.stepLookup.hidden = state.step !== "lookup";
  ui.stepReview.hidden = state.step !== "review";
  ui.stepDone.hidden = state.step !== "done";
  setText(ui.error, state.step === "done" ? "" : state.error);
  setText(ui.status, state.step === "done" ? "" : state.status);
  if (state.step === "lookup") renderLookup(ui, state);
  else if (state.step === "review") renderReview(ui, state);
  else renderDone(ui, state);
}

function renderLookup(ui: Elements, state: LookupState): void {
  const viaLink = state.entry.kind === "link";
  ui.codeField.hidden = viaLink;
  ui.emailField.hidden = viaLink;
  ui.lookupIntro.hidden = viaLink;
  ui.linkIntro.hidden = !viaLink;
  setInvalid(ui.userCode, state.invalid.code);
  setInvalid(ui.email, state.invalid.email);
  setButton(ui.continueButton, state.busy ? "Checking…" : "Continue", state.busy || state.waiting, state.busy);
}

function renderReview(ui: Elements, state: ReviewState): void {
  const { request } = state;
  setText(ui.agentName, request.agent.name);
  setText(ui.agentEmail, request.agent.email ?? "not given");
  ui.agentEmail.classList.toggle("muted", request.agent.email === null);
  ui.accountRow.hidden = request.account === null;
  setText(ui.accountName, request.account?.name ?? "");
  setText(ui.accountEmail, request.account?.operator_email ?? "");
  setText(ui.accountId, request.account_id);
  ui.userCodeRow.hidden = request.user_code === null;
  setText(ui.shownUserCode, request.user_code ?? "");
  setText(ui.vaultKey, request.vault_key);
  setText(ui.description, request.description);
  ui.bindingRow.hidden = request.binding_message === null;
  setText(ui.bindingMessage, request.binding_message ?? "");
  ui.e2eBox.hidden = state.fingerprint === null || state.fingerprint === "unreadable";
  ui.passkeyBox.hidden = !state.request.passkey_required;
  ui.noPasskeyWarning.hidden = state.request.passkey_required;
  setText(ui.fingerprint, ui.e2eBox.hidden ? "" : (state.fingerprint ?? ""));
  // README, "Approval policies (N-of-M)": once a first approver gave the credential, the others sign it.
  const lines = approvalsLines(request);
  const signsStored = request.payload_sha256 !== undefined;
  ui.approvalsBox.hidden = lines === null;
  setText(ui.approvalsCount, lines?.count ?? "");
  setText(ui.approvers, lines?.approvers ?? "");
  ui.signsStored.hidden = !signsStored;
  setText(ui.signsStored, signsStored ? SIGNS_STORED : "");
  ui.credentialField.hidden = signsStored;

  const expired = state.secondsLeft <= 0;
  setText(ui.timeLeft, expired ? "Expired" : formatDuration(state.secondsLeft));
  ui.timeLeft.setAttribute("aria-label", expired ? "Expired" : `${describeDuration(state.secondsLeft)} left`);
  ui.timeLeft.classList.toggle("low", !expired && state.secondsLeft <= 60);
  ui.timeLeft.classList.toggle("expired", expired);

  // The credential is dropped from the page once it can no longer be sent.
  const closed = expired || state.approvalToken === null;
  if (closed) ui.credential.value = "";
  const bytes = closed ? 0 : state.credentialBytes;
  setText(ui.credentialCount, `${bytes} / ${MAX_CREDENTIAL_BYTES} bytes`);
  ui.credentialCount.classList.toggle("over", bytes > MAX_CREDENTIAL_BYTES);
  setInvalid(ui.credential, state.credentialInvalid);
  ui.credential.classList.toggle("masked", !state.credentialShown);
  ui.toggleVisibility.setAttribute("aria-pressed", String(state.credentialShown));
  setText(ui.toggleVisibility, state.credentialShown ? "Hide" : "Show");

  const approving = state.busy === "encrypting" || state.busy === "sending";
  const cannotApprove = closed || state.busy !== null || state.fingerprint === "unreadable";
  setButton(ui.approve, approving ? BUSY_LABEL[state.busy!] : "Approve", cannotApprove, approving);
  setButton(ui.deny, state.busy === "denying" ? BUSY_LABEL.denying : "Deny", closed || state.busy !== null, state.busy === "denying");
}

function renderDone(ui: Elements, state: DoneState): void {
  ui.credential.value = "";
  ui.stepDone.classList.toggle("approved", state.status !== "denied");
  ui.stepDone.classList.toggle("denied", state.status === "denied");
  if (state.status === "approved") {
    setText(ui.doneTitle, "Approved");
    setText(ui.doneText, "The credential was encrypted in this browser and is waiting for the agent, which receives it once. You can close this page.");
  } else if (state.status === "awaiting_approvals") {
    setText(ui.doneTitle, "Approved");
    setText(ui.doneText, "Your approval is recorded. This request needs other operators to approve it too, here or in the console; the agent receives it after that. You can close this page.");
  } else {
    setText(ui.doneTitle, "Denied");
    setText(ui.doneText, "The agent has been told no and received nothing. You can close this page.");
  }
}

function setInvalid(input: HTMLInputElement | HTMLTextAreaElement, invalid: boolean): void {
  if (invalid) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

function setButton(button: HTMLButtonElement, label: string, disabled: boolean, busy: boolean): void {
  setText(button, label);
  button.disabled = disabled;
  if (busy) button.setAttribute("aria-busy", "true");
  else button.removeAttribute("aria-busy");
}
