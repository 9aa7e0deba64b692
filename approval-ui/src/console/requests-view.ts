/**
 * The pending requests, kept live: a WebSocket says "requests changed" and the list is fetched
 * again (within 2 s of a new request, README, "Console"); if the socket is refused, a 2 s poll.
 * Each request keeps its DOM node across refreshes, so a credential being typed is never lost.
 * Every agent-supplied string is set as text (dom.ts `setText`), never as markup.
 */
import { MAX_CREDENTIAL_BYTES } from "../../../core/limits";
import { setText } from "../dom";
import { encryptCredential } from "../encrypt";
import { getJson, type ApiResult, type ConsoleRequestBody, type ConsoleRequestsBody } from "./api";
import { showApprovals } from "./approvals-part";
import type { Feedback } from "./feedback";
import type { DecideAnswerBody } from "../../../core/wire";
import { decideWithPasskey } from "./passkey";
import type { SavedView } from "./saved-view";

const POLL_MS = 2000;

export interface RequestsView {
  start(): void;
  refresh(): Promise<void>;
}

/** `me`: the signed-in operator's ID, to tell whether they approved a request that needs several. */
export function requestsView(feedback: Feedback, onChange: () => void, me: string, saved?: SavedView): RequestsView {
  const list = document.getElementById("requests") as HTMLUListElement;
  const empty = document.getElementById("no-requests") as HTMLElement;
  const title = document.getElementById("requests-title") as HTMLElement;
  const liveState = document.getElementById("live-state") as HTMLElement;
  const template = document.getElementById("request-template") as HTMLTemplateElement;
  const shown = new Map<string, HTMLLIElement>();
  /** Brings a shown item up to date with its request as listed again (its approvals may have changed). */
  const updaters = new Map<string, (request: ConsoleRequestBody) => void>();
  let refreshing: Promise<void> | null = null;
  let again = false;

  async function load(): Promise<void> {
    const result = await getJson<ConsoleRequestsBody>("/v1/console/requests");
    if (!result.ok) {
      if (result.failure.status === 401) location.reload();
      else feedback.error(result.failure.description);
      return;
    }
    const current = new Set(result.value.requests.map((r) => r.request_id));
    for (const [id, item] of shown) {
      if (!current.has(id) && !item.contains(document.activeElement)) {
        item.remove();
        shown.delete(id);
        updaters.delete(id);
      } else if (!current.has(id)) {
        // Decided elsewhere while focused here: disable rather than pull the focus away.
        for (const control of item.querySelectorAll<HTMLButtonElement | HTMLTextAreaElement>("button, textarea")) control.disabled = true;
      }
    }
    for (const request of result.value.requests) {
      updaters.get(request.request_id)?.(request);
      if (!shown.has(request.request_id)) {
        const item = render(request);
        shown.set(request.request_id, item);
        list.append(item);
      }
    }
    empty.hidden = shown.size > 0;
    openLinkedRequest();
  }

  /** A notification's tap opens `/console#request=<id>`: bring that request into view, once. */
  function openLinkedRequest(): void {
    const linked = new URLSearchParams(location.hash.slice(1)).get("request");
    const item = linked ? shown.get(linked) : undefined;
    if (!item) return;
    history.replaceState(null, "", "/console");
    item.scrollIntoView({ block: "center" });
    item.querySelector<HTMLElement>("textarea, button")?.focus();
  }

  /** Coalesces announcements that arrive while a fetch is in flight into one more fetch. */
  function refresh(): Promise<void> {
    if (refreshing) {
      again = true;
      return refreshing;
    }
    refreshing = (async () => {
      do {
        again = false;
        await load();
      } while (again);
      refreshing = null;
    })();
    return refreshing;
  }

  function render(request: ConsoleRequestBody): HTMLLIElement {
    const item = (template.content.firstElementChild as HTMLLIElement).cloneNode(true) as HTMLLIElement;
    const part = <T extends HTMLElement>(selector: string) => item.querySelector(selector) as T;
    const id = `credential-${request.request_id}`;
    item.dataset.requestId = request.request_id;
    item.setAttribute("aria-label", `Request from ${request.agent.name}`);
    setText(part(".request-agent"), request.agent.name);
    setText(part(".request-agent-email"), request.agent.email ?? "none given");
    setText(part(".request-vault-key"), request.vault_key);
    setText(part(".request-description"), request.description);
    setText(part(".request-expires"), new Date(request.expires_at).toLocaleTimeString());
    if (request.binding_message !== undefined) {
      part(".request-binding-row").hidden = false;
      setText(part(".request-binding"), request.binding_message);
    }
    if (request.fingerprint !== undefined) {
      part(".request-e2e").hidden = false;
      setText(part(".request-fingerprint"), request.fingerprint);
    }
    const credential = part<HTMLTextAreaElement>(".request-credential");
    credential.id = id;
    part<HTMLLabelElement>(".request-credential-label").htmlFor = id;
    const approve = part<HTMLButtonElement>(".request-approve");
    const deny = part<HTMLButtonElement>(".request-deny");
    // Which request each button decides, for a screen reader's list of buttons.
    approve.setAttribute("aria-description", `approves the request of ${request.agent.name}`);
    deny.setAttribute("aria-description", `denies the request of ${request.agent.name}`);

    const busy = (on: boolean) => {
      approve.disabled = on;
      deny.disabled = on;
      credential.disabled = on;
    };

    let mode = showApprovals(item, request, me);
    updaters.set(request.request_id, (listed) => (mode = showApprovals(item, listed, me)));

    async function send(decision: { decision: "deny" } | { decision: "approve"; credential_jwe: string } | { decision: "approve" }, storedDigest?: string): Promise<void> {
      feedback.status(decision.decision === "approve" ? "Sign the approval with your passkey…" : "Sign the denial with your passkey…");
      await finish(await decideWithPasskey(request.request_id, decision, storedDigest));
    }

    async function finish(result: ApiResult<DecideAnswerBody>): Promise<void> {
      busy(false);
      if (!result.ok) {
        feedback.error(result.failure.description);
        return;
      }
      const { value } = result;
      feedback.status(
        value.status === "awaiting_approvals"
          ? `Approved (${value.approvals} of ${value.required}): the request of ${request.agent.name} waits for another operator.`
          : `${value.status === "approved" ? "Approved" : "Denied"}: the request of ${request.agent.name}.`,
      );
      credential.value = "";
      title.focus();
      await refresh();
      onChange();
    }

    part<HTMLFormElement>(".request-form").addEventListener("submit", (event) => {
      event.preventDefault();
      if (mode.kind === "approved_by_me") return;
      if (mode.kind === "sign_stored") {
        // A later approver: no credential; the passkey signs the one the first approver stored.
        busy(true);
        feedback.clear();
        void send({ decision: "approve" }, mode.payloadSha256);
        return;
      }
      const value = credential.value.trim().includes("\n") ? credential.value : credential.value.trim();
      const bytes = new TextEncoder().encode(value).length;
      if (bytes === 0 || bytes > MAX_CREDENTIAL_BYTES) {
        feedback.error(bytes === 0 ? "Enter the credential to approve, or press Deny." : `The credential is ${bytes} bytes; the most Keyferry carries is ${MAX_CREDENTIAL_BYTES}.`);
        credential.focus();
        return;
      }
      busy(true);
      feedback.clear();
      // In end-to-end mode the encryption key is the agent's own (its fingerprint is shown above).
      void encryptCredential(value, request.encryption_key).then(
        (jwe) => send({ decision: "approve", credential_jwe: jwe }),
        () => {
          busy(false);
          feedback.error("This browser could not encrypt the credential.");
        },
      );
    });
    deny.addEventListener("click", () => {
      busy(true);
      feedback.clear();
      void send({ decision: "deny" });
    });
    saved?.attach(item, request, { busy, finish });
    return item;
  }

  function connect(attempt = 0): void {
    const socket = new WebSocket(new URL("/v1/console/requests/live", location.href.replace(/^http/, "ws")));
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      liveState.textContent = "Live: new requests appear here.";
      void refresh();
    });
    socket.addEventListener("message", () => void refresh());
    socket.addEventListener("close", () => {
      if (!opened && attempt >= 2) return poll();
      // Reconnect with a short backoff; a refetch on open catches what was missed.
      setTimeout(() => connect(opened ? 0 : attempt + 1), opened ? 500 : 1000 * (attempt + 1));
    });
  }

  function poll(): void {
    liveState.textContent = "Checking for new requests every 2 seconds.";
    setInterval(() => void refresh(), POLL_MS);
  }

  return {
    start() {
      void refresh();
      connect();
    },
    refresh,
  };
}
