import { formatUserCode, normalizeUserCode } from "../../core/user-code";
import { lookup, type ApiError } from "./api";
import type { Elements } from "./elements";
import { lookupMessage } from "./messages";
import type { LookupState, Store } from "./state";
import type { ReviewStep } from "./review-step";

/** Step 1: identify the request, by link token or by code and operator email. */
export function wireLookup(store: Store, ui: Elements, review: ReviewStep): void {
  ui.userCode.addEventListener("blur", () => {
    const code = normalizeUserCode(ui.userCode.value);
    if (code) ui.userCode.value = formatUserCode(code);
  });

  ui.lookupForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const state = store.get();
    if (state.step === "lookup" && !state.busy && !state.waiting) void submit(state);
  });

  async function submit(state: LookupState): Promise<void> {
    const cleared: LookupState = { ...state, error: "", status: "" };
    let input: Parameters<typeof lookup>[0];
    if (state.entry.kind === "link") {
      input = { link_token: state.entry.token };
    } else {
      const code = normalizeUserCode(ui.userCode.value);
      const email = ui.email.value.trim();
      const invalid = { code: !code, email: !email.includes("@") };
      if (!code) return store.set({ ...cleared, invalid, error: "Enter the eight-letter code the agent printed, for example WDJB-MJHT." }, ui.userCode);
      if (invalid.email) return store.set({ ...cleared, invalid, error: "Enter the operator email of the agent's account." }, ui.email);
      input = { user_code: formatUserCode(code), email };
      cleared.invalid = invalid;
    }
    store.set({ ...cleared, busy: true });
    const result = await lookup(input);
    const idle: LookupState = { ...cleared, busy: false };
    if (!result.ok) return failed(idle, result.failure);
    await review.open(state.entry, result.value);
  }

  function failed(state: LookupState, failure: ApiError): void {
    const error = lookupMessage(failure, state.entry.kind === "link");
    if (failure.status === 429) {
      // Keep the operator from burning more of the limit; the button comes back when it may help.
      const wait = Math.min(Math.max(failure.retryAfter ?? 60, 1), 3600);
      store.set({ ...state, error, waiting: true });
      setTimeout(() => {
        const now = store.get();
        if (now.step === "lookup") store.set({ ...now, waiting: false, status: "You can try again now." });
      }, wait * 1000);
      return;
    }
    if (state.entry.kind === "code" && failure.error === "access_denied") {
      return store.set({ ...state, error, invalid: { code: false, email: true } }, ui.email);
    }
    if (state.entry.kind === "code" && failure.error === "not_found") {
      return store.set({ ...state, error, invalid: { code: true, email: false } }, ui.userCode);
    }
    store.set({ ...state, error });
  }
}
