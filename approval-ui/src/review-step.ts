import type { AuthenticationResponseJSON } from "@simplewebauthn/browser";
import { keyFingerprint } from "../../core/fingerprint";
import { MAX_CREDENTIAL_BYTES } from "../../core/limits";
import { decide, type ApiError, type Decision, type LookupResult } from "./api";
import { startCountdown } from "./countdown";
import type { Elements } from "./elements";
import { encryptCredential } from "./encrypt";
import { decideMessage } from "./messages";
import { signDecision } from "./passkey";
import type { Entry, ReviewState, Store } from "./state";

export interface ReviewStep {
  open(entry: Entry, found: LookupResult): Promise<void>;
}

const EXPIRED =
  "This request expired before it was decided. Nothing was approved. Ask the agent to make a new request if you still need to.";

/** Step 2: review the request and decide; step 3 (done) is the decision's answer. */
export function wireReview(store: Store, ui: Elements): ReviewStep {
  // The countdown of the request under review; replaced when another is opened.
  let stopCountdown = (): void => {};

  /** The current state if it is still the review of this request (a handler's await may outlive it). */
  const current = (): ReviewState | null => {
    const state = store.get();
    return state.step === "review" ? state : null;
  };

  ui.credential.addEventListener("input", () => {
    const state = current();
    if (state) store.set({ ...state, credentialBytes: byteLength(credentialValue(ui)) });
  });

  ui.toggleVisibility.addEventListener("click", () => {
    const state = current();
    if (state) store.set({ ...state, credentialShown: !state.credentialShown });
  });

  ui.decideForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const state = current();
    if (state && state.busy === null && state.secondsLeft > 0) void approve(state);
  });

  ui.deny.addEventListener("click", () => {
    const state = current();
    if (state && state.busy === null && state.secondsLeft > 0) void send(state, { decision: "deny" }, "denying");
  });

  async function approve(state: ReviewState): Promise<void> {
    // A first approver under an approval policy gave the credential: this approval signs that one.
    if (state.request.payload_sha256 !== undefined) return send(state, { decision: "approve" }, "sending");
    const value = credentialValue(ui);
    const bytes = byteLength(value);
    if (bytes === 0 || bytes > MAX_CREDENTIAL_BYTES) {
      const error = bytes === 0 ? "Enter the credential to approve, or press Deny." : `The credential is ${bytes} bytes; the most Keyferry carries is ${MAX_CREDENTIAL_BYTES}.`;
      return store.set({ ...state, error, status: "", credentialInvalid: true }, ui.credential);
    }
    store.set({ ...state, error: "", status: "", credentialInvalid: false, busy: "encrypting" });
    let jwe: string;
    try {
      jwe = await encryptCredential(value, state.request.encryption_key);
    } catch {
      const now = current();
      if (now) store.set({ ...now, busy: null, error: "This browser could not encrypt the credential. Try a current version of Chrome, Firefox, Safari or Edge." });
      return;
    }
    await send(state, { decision: "approve", credential_jwe: jwe }, "sending");
  }

  async function send(state: ReviewState, decision: Decision, busy: "sending" | "denying"): Promise<void> {
    const approvalToken = state.approvalToken;
    if (approvalToken === null) return;
    store.set({ ...(current() ?? state), error: "", status: state.request.passkey_required ? "Confirm with your passkey…" : "", busy });
    let webauthn: AuthenticationResponseJSON | undefined;
    if (state.request.passkey_required) {
      const signed = await signDecision(approvalToken, decision, state.request.payload_sha256);
      if (!signed.ok) {
        const now = current();
        if (now) store.set(afterFailure({ ...now, busy: null, status: "" }, signed.failure));
        return;
      }
      webauthn = signed.value;
    }
    const result = await decide(approvalToken, decision, webauthn);
    const now = current();
    if (!now) return;
    // An operator enrolled a passkey after the request was issued (the look-up said none): sign and send again.
    if (!result.ok && result.failure.error === "passkey_required" && result.failure.status === 401 && !state.request.passkey_required) {
      const signing = { ...now, request: { ...now.request, passkey_required: true } };
      store.set(signing);
      return send(signing, decision, busy);
    }
    if (result.ok) {
      stopCountdown();
      store.set({ step: "done", status: result.value }, ui.doneTitle);
      return;
    }
    store.set(afterFailure({ ...now, busy: null }, result.failure));
  }

  function afterFailure(state: ReviewState, failure: ApiError): ReviewState {
    const error = decideMessage(failure);
    if (failure.error !== "invalid_token" && failure.error !== "already_claimed") return { ...state, error };
    // Nothing more can be done with this approval token.
    stopCountdown();
    return { ...state, error, approvalToken: null, credentialBytes: 0 };
  }

  function tick(secondsLeft: number): void {
    const state = current();
    if (!state) return;
    const lastMinute = secondsLeft > 0 && secondsLeft <= 60 && !state.lastMinuteAnnounced;
    store.set({
      ...state,
      secondsLeft,
      lastMinuteAnnounced: state.lastMinuteAnnounced || lastMinute,
      ...(lastMinute ? { status: "Less than a minute left to decide." } : {}),
      ...(secondsLeft <= 0 ? { error: EXPIRED, credentialBytes: 0 } : {}),
    });
  }

  return {
    async open(entry, found) {
      const { request } = found;
      let fingerprint: ReviewState["fingerprint"] = null;
      if (request.public_key) fingerprint = await keyFingerprint(request.public_key).catch(() => "unreadable");
      const remainingMs = Date.parse(request.expires_at) - found.serverNow;
      stopCountdown();
      store.set(
        {
          step: "review",
          entry,
          request,
          approvalToken: found.approvalToken,
          fingerprint,
          secondsLeft: Math.max(0, Math.ceil(remainingMs / 1000)),
          lastMinuteAnnounced: false,
          busy: null,
          credentialBytes: byteLength(credentialValue(ui)),
          credentialInvalid: false,
          credentialShown: false,
          error: fingerprint === "unreadable" ? "The agent's key could not be read, so this request cannot be approved safely. Press Deny." : "",
          status: "",
        },
        ui.reviewTitle,
      );
      stopCountdown = startCountdown(remainingMs, tick);
    },
  };
}

/**
 * A single-line secret pasted from a terminal often carries a stray newline that would break it;
 * multi-line secrets (PEM, JSON) are kept exactly as entered.
 */
function credentialValue(ui: Elements): string {
  const raw = ui.credential.value;
  return raw.trim().includes("\n") ? raw : raw.trim();
}

const byteLength = (value: string): number => new TextEncoder().encode(value).length;
