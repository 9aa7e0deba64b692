import { keyFingerprint } from "../../core/fingerprint";
import { formatUserCode, normalizeUserCode } from "../../core/user-code";
import { decide, lookup, type ApiError, type ApprovalRequest, type LookupInput } from "./api";
import { describeDuration, formatDuration, startCountdown } from "./countdown";
import { byId, setText } from "./dom";
import { encryptCredential } from "./encrypt";
import { decideMessage, lookupMessage } from "./messages";

/** CONTRACT.md: credential values are 1–16384 bytes. */
const MAX_CREDENTIAL_BYTES = 16384;

const ui = {
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

const params = new URLSearchParams(location.search);
// Approval links carry their token in the fragment (`/approve#link=…`), which the browser never
// sends, so it stays out of server logs and Referer; `?link=` is read only for links sent earlier.
const linkToken = new URLSearchParams(location.hash.slice(1)).get("link") ?? params.get("link");

let approvalToken: string | null = null;
let encryptionKey: ApprovalRequest["encryption_key"] | null = null;
let stopCountdown: (() => void) | null = null;
let expired = false;
let busy = false;

function showError(message: string): void {
  setText(ui.error, message);
}

function clearMessages(): void {
  setText(ui.error, "");
  setText(ui.status, "");
}

function setInvalid(input: HTMLInputElement | HTMLTextAreaElement, invalid: boolean): void {
  if (invalid) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

function setBusy(button: HTMLButtonElement, on: boolean, label: string): void {
  busy = on;
  button.disabled = on;
  setText(button, label);
  if (on) button.setAttribute("aria-busy", "true");
  else button.removeAttribute("aria-busy");
}

// ---- Step 1: identify the request -------------------------------------------------------------

function initLookup(): void {
  if (linkToken) {
    ui.codeField.hidden = true;
    ui.emailField.hidden = true;
    ui.lookupIntro.hidden = true;
    ui.linkIntro.hidden = false;
    ui.continueButton.focus();
    return;
  }
  const prefill = params.get("user_code");
  if (prefill) {
    const code = normalizeUserCode(prefill);
    ui.userCode.value = code ? formatUserCode(code) : prefill.slice(0, 16);
  }
  (ui.userCode.value ? ui.email : ui.userCode).focus();
}

ui.userCode.addEventListener("blur", () => {
  const code = normalizeUserCode(ui.userCode.value);
  if (code) ui.userCode.value = formatUserCode(code);
});

ui.lookupForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!busy) void submitLookup();
});

async function submitLookup(): Promise<void> {
  clearMessages();
  let input: LookupInput;
  if (linkToken) {
    input = { link_token: linkToken };
  } else {
    const code = normalizeUserCode(ui.userCode.value);
    const email = ui.email.value.trim();
    setInvalid(ui.userCode, !code);
    setInvalid(ui.email, !email.includes("@"));
    if (!code) {
      showError("Enter the eight-letter code the agent printed, for example WDJB-MJHT.");
      ui.userCode.focus();
      return;
    }
    if (!email.includes("@")) {
      showError("Enter the operator email of the agent's account.");
      ui.email.focus();
      return;
    }
    input = { user_code: formatUserCode(code), email };
  }

  setBusy(ui.continueButton, true, "Checking…");
  const result = await lookup(input);
  setBusy(ui.continueButton, false, "Continue");
  if (!result.ok) {
    handleLookupFailure(result.failure);
    return;
  }
  approvalToken = result.value.approvalToken;
  await showReview(result.value.request, Date.parse(result.value.request.expires_at) - result.value.serverNow);
}

function handleLookupFailure(failure: ApiError): void {
  showError(lookupMessage(failure, linkToken !== null));
  if (failure.status === 429) {
    // Keep the operator from burning more of the limit; the button comes back when it may help.
    const wait = Math.min(Math.max(failure.retryAfter ?? 60, 1), 3600);
    ui.continueButton.disabled = true;
    setTimeout(() => {
      ui.continueButton.disabled = false;
      setText(ui.status, "You can try again now.");
    }, wait * 1000);
    return;
  }
  if (linkToken) return;
  if (failure.error === "access_denied") {
    setInvalid(ui.email, true);
    ui.email.focus();
  } else if (failure.error === "not_found") {
    setInvalid(ui.userCode, true);
    ui.userCode.focus();
  }
}

// ---- Step 2: review and decide ----------------------------------------------------------------

async function showReview(request: ApprovalRequest, remainingMs: number): Promise<void> {
  encryptionKey = request.encryption_key;
  setText(ui.agentName, request.agent.name);
  if (request.agent.email) {
    setText(ui.agentEmail, request.agent.email);
    ui.agentEmail.classList.remove("muted");
  } else {
    setText(ui.agentEmail, "not given");
    ui.agentEmail.classList.add("muted");
  }
  setText(ui.accountId, request.account_id);
  setText(ui.vaultKey, request.vault_key);
  setText(ui.description, request.description);
  ui.userCodeRow.hidden = request.user_code === null;
  setText(ui.shownUserCode, request.user_code ?? "");
  ui.bindingRow.hidden = request.binding_message === null;
  setText(ui.bindingMessage, request.binding_message ?? "");

  ui.e2eBox.hidden = true;
  if (request.public_key) {
    try {
      setText(ui.fingerprint, await keyFingerprint(request.public_key));
      ui.e2eBox.hidden = false;
    } catch {
      showError("The agent's key could not be read, so this request cannot be approved safely. Press Deny.");
      ui.approve.disabled = true;
    }
  }

  ui.stepLookup.hidden = true;
  ui.stepReview.hidden = false;
  updateCount();
  stopCountdown?.();
  stopCountdown = startCountdown(remainingMs, renderTimeLeft, onExpired);
  ui.reviewTitle.focus();
}

let announcedLastMinute = false;

function renderTimeLeft(seconds: number): void {
  setText(ui.timeLeft, seconds > 0 ? formatDuration(seconds) : "Expired");
  ui.timeLeft.setAttribute("aria-label", seconds > 0 ? `${describeDuration(seconds)} left` : "Expired");
  ui.timeLeft.classList.toggle("low", seconds > 0 && seconds <= 60);
  if (seconds > 0 && seconds <= 60 && !announcedLastMinute) {
    announcedLastMinute = true;
    setText(ui.status, "Less than a minute left to decide.");
  }
}

function onExpired(): void {
  expired = true;
  ui.timeLeft.classList.remove("low");
  ui.timeLeft.classList.add("expired");
  ui.approve.disabled = true;
  ui.deny.disabled = true;
  ui.credential.value = "";
  updateCount();
  showError("This request expired before it was decided. Nothing was approved. Ask the agent to make a new request if you still need to.");
}

function credentialValue(): string {
  // A single-line secret pasted from a terminal often carries a stray newline that would break it;
  // multi-line secrets (PEM, JSON) are kept exactly as entered.
  const raw = ui.credential.value;
  return raw.trim().includes("\n") ? raw : raw.trim();
}

function updateCount(): void {
  const bytes = new TextEncoder().encode(credentialValue()).length;
  setText(ui.credentialCount, `${bytes} / ${MAX_CREDENTIAL_BYTES} bytes`);
  ui.credentialCount.classList.toggle("over", bytes > MAX_CREDENTIAL_BYTES);
}

ui.credential.addEventListener("input", updateCount);

ui.toggleVisibility.addEventListener("click", () => {
  const show = ui.credential.classList.contains("masked");
  ui.credential.classList.toggle("masked", !show);
  ui.toggleVisibility.setAttribute("aria-pressed", String(show));
  setText(ui.toggleVisibility, show ? "Hide" : "Show");
});

ui.decideForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!busy && !expired) void submitApprove();
});

ui.deny.addEventListener("click", () => {
  if (!busy && !expired) void submitDeny();
});

async function submitApprove(): Promise<void> {
  clearMessages();
  const value = credentialValue();
  const bytes = new TextEncoder().encode(value).length;
  if (bytes === 0 || bytes > MAX_CREDENTIAL_BYTES) {
    setInvalid(ui.credential, true);
    showError(bytes === 0 ? "Enter the credential to approve, or press Deny." : `The credential is ${bytes} bytes; the most Keyferry carries is ${MAX_CREDENTIAL_BYTES}.`);
    ui.credential.focus();
    return;
  }
  setInvalid(ui.credential, false);
  if (!approvalToken || !encryptionKey) return;

  ui.deny.disabled = true;
  setBusy(ui.approve, true, "Encrypting…");
  let jwe: string;
  try {
    jwe = await encryptCredential(value, encryptionKey);
  } catch {
    setBusy(ui.approve, false, "Approve");
    ui.deny.disabled = false;
    showError("This browser could not encrypt the credential. Try a current version of Chrome, Firefox, Safari or Edge.");
    return;
  }
  setText(ui.approve, "Sending…");
  const result = await decide(approvalToken, { decision: "approve", credential_jwe: jwe });
  setBusy(ui.approve, false, "Approve");
  ui.deny.disabled = expired;
  if (!result.ok) return handleDecideFailure(result.failure);
  finish(result.value);
}

async function submitDeny(): Promise<void> {
  clearMessages();
  if (!approvalToken) return;
  ui.approve.disabled = true;
  setBusy(ui.deny, true, "Denying…");
  const result = await decide(approvalToken, { decision: "deny" });
  setBusy(ui.deny, false, "Deny");
  ui.approve.disabled = expired;
  if (!result.ok) return handleDecideFailure(result.failure);
  finish(result.value);
}

function handleDecideFailure(failure: ApiError): void {
  showError(decideMessage(failure));
  if (failure.error === "invalid_token" || failure.error === "already_claimed") {
    // Nothing more can be done with this approval token.
    approvalToken = null;
    ui.credential.value = "";
    updateCount();
    ui.approve.disabled = true;
    ui.deny.disabled = true;
    stopCountdown?.();
  }
}

// ---- Step 3: the outcome ----------------------------------------------------------------------

function finish(status: "approved" | "denied"): void {
  stopCountdown?.();
  approvalToken = null;
  encryptionKey = null;
  ui.credential.value = "";
  ui.stepReview.hidden = true;
  ui.stepDone.hidden = false;
  ui.stepDone.classList.add(status);
  if (status === "approved") {
    setText(ui.doneTitle, "Approved");
    setText(ui.doneText, "The credential was encrypted in this browser and is waiting for the agent, which receives it once. You can close this page.");
  } else {
    setText(ui.doneTitle, "Denied");
    setText(ui.doneText, "The agent has been told no and received nothing. You can close this page.");
  }
  ui.doneTitle.focus();
}

initLookup();
