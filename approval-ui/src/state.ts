import type { ApprovalRequest } from "./api";

/**
 * The page is in one of three steps; everything the page shows is a function of this state
 * (render.ts). Handlers compute the next state and hand it to the store; they keep none of their own.
 */
export type PageState = LookupState | ReviewState | DoneState;

/** How the request is identified: an approval link's token (from the URL fragment), or a typed code. */
export type Entry = { kind: "link"; token: string } | { kind: "code" };

export interface LookupState {
  step: "lookup";
  entry: Entry;
  busy: boolean;
  /** After a 429, Continue stays off until the server's Retry-After has passed. */
  waiting: boolean;
  invalid: { code: boolean; email: boolean };
  error: string;
  status: string;
}

export interface ReviewState {
  step: "review";
  entry: Entry;
  request: ApprovalRequest;
  /** Null once the server said it was used or expired: nothing more can be decided here. */
  approvalToken: string | null;
  /** End-to-end mode: the agent key's fingerprint, or "unreadable" (then only Deny is offered). */
  fingerprint: string | "unreadable" | null;
  secondsLeft: number;
  lastMinuteAnnounced: boolean;
  busy: "encrypting" | "sending" | "denying" | null;
  credentialBytes: number;
  credentialInvalid: boolean;
  credentialShown: boolean;
  error: string;
  status: string;
}

export interface DoneState {
  step: "done";
  /** `awaiting_approvals`: approved, and other operators must approve too (README, "Approval policies (N-of-M)"). */
  status: "approved" | "denied" | "awaiting_approvals";
}

export interface Store {
  get(): PageState;
  /** Replaces the state and renders it; `focus` moves the keyboard focus after rendering. */
  set(next: PageState, focus?: HTMLElement): void;
}

export function createStore(initial: PageState, render: (state: PageState) => void): Store {
  let state = initial;
  return {
    get: () => state,
    set(next, focus) {
      state = next;
      render(state);
      focus?.focus();
    },
  };
}

export function initialLookup(entry: Entry): LookupState {
  return { step: "lookup", entry, busy: false, waiting: false, invalid: { code: false, email: false }, error: "", status: "" };
}
