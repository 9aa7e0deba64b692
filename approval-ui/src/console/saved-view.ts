/**
 * The "Saved credentials" section (README, "Saved credentials"): the operator's items (name and
 * date; the ciphertext stays on the server until an approval opens it), a form that seals a new one
 * with a passkey touch, and, on each pending request whose vault key has a saved item's name, the
 * button "Approve with saved credential". Names are set as text.
 */
import { MAX_CREDENTIAL_BYTES, VAULT_KEY_PATTERN } from "../../../core/limits";
import type { DecideAnswerBody, SavedCredentialListBody } from "../../../core/wire";
import { setText } from "../dom";
import { getJson, sendJson, type ApiResult, type ConsoleRequestBody } from "./api";
import type { Feedback } from "./feedback";
import { NO_PRF, approveWithSaved, saveCredential } from "./saved-passkey";

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** Only a request that still takes a credential from this operator (not one awaiting other approvers' signatures). */
const takesCredential = (button: HTMLElement) => button.closest("li")?.querySelector<HTMLElement>(".request-credential")?.closest<HTMLElement>(".field")?.hidden !== true;

/** What a request's item lends the saved approval: its controls' busy state and the typed path's ending. */
export interface RequestControls {
  busy(on: boolean): void;
  finish(result: ApiResult<DecideAnswerBody>): Promise<void>;
}

export interface SavedView {
  start(): void;
  /** Adds the saved approval to a pending request's item (shown while a saved item has its vault key's name). */
  attach(item: HTMLElement, request: ConsoleRequestBody, controls: RequestControls): void;
}

export function savedView(feedback: Feedback): SavedView {
  const list = byId<HTMLUListElement>("saved-items");
  const form = byId<HTMLFormElement>("saved-form");
  const nameInput = byId<HTMLInputElement>("saved-name-input");
  const valueInput = byId<HTMLTextAreaElement>("saved-value-input");
  let names = new Set<string>();
  const offered = new Map<HTMLButtonElement, string>();

  function showOffers(): void {
    for (const [button, vaultKey] of offered) {
      if (!button.isConnected) offered.delete(button);
      else button.hidden = !names.has(vaultKey) || !takesCredential(button);
    }
  }

  async function refresh(): Promise<void> {
    const result = await getJson<SavedCredentialListBody>("/v1/console/saved");
    if (!result.ok) return feedback.error(result.failure.description);
    names = new Set(result.value.items.map((item) => item.name));
    list.replaceChildren(
      ...result.value.items.map((item) => {
        const row = document.createElement("li");
        const label = document.createElement("span");
        setText(label, `${item.name} · saved ${new Date(item.updated_at).toLocaleString()}`);
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "button button-danger";
        setText(remove, "Delete");
        remove.setAttribute("aria-label", `Delete saved credential ${item.name}`);
        remove.addEventListener("click", () => {
          if (!confirm(`Delete the saved credential ${item.name}?`)) return;
          void sendJson<void>("DELETE", `/v1/console/saved/${encodeURIComponent(item.name)}`).then((done) => {
            if (!done.ok) return feedback.error(done.failure.description);
            feedback.status(`Deleted the saved credential ${item.name}.`);
            void refresh();
          });
        });
        row.append(label, remove);
        return row;
      }),
    );
    showOffers();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = nameInput.value.trim();
    const value = valueInput.value.trim().includes("\n") ? valueInput.value : valueInput.value.trim();
    const bytes = new TextEncoder().encode(value).length;
    if (!VAULT_KEY_PATTERN.test(name)) {
      feedback.error("A name is the vault key agents ask for: a letter or digit, then letters, digits, '.', '_' or '-' (128 at most).");
      return nameInput.focus();
    }
    if (bytes === 0 || bytes > MAX_CREDENTIAL_BYTES) {
      feedback.error(bytes === 0 ? "Enter the credential to save." : `The credential is ${bytes} bytes; the most Keyferry carries is ${MAX_CREDENTIAL_BYTES}.`);
      return valueInput.focus();
    }
    const submit = form.querySelector("button") as HTMLButtonElement;
    submit.disabled = true;
    feedback.status("Touch your passkey: it gives this browser the key that seals the credential…");
    void saveCredential(name, value).then(async (saved) => {
      submit.disabled = false;
      if (!saved.ok) return feedback.error(saved.failure.description);
      form.reset();
      feedback.status(`Saved ${name}, sealed by your passkey.`);
      await refresh();
    });
  });

  return {
    start: () => void refresh(),
    attach(item, request, controls) {
      const button = item.querySelector(".request-approve-saved") as HTMLButtonElement;
      const note = item.querySelector(".request-saved-note") as HTMLElement;
      button.setAttribute("aria-description", `approves the request of ${request.agent.name} with your saved ${request.vault_key}`);
      // Not yet in the page: the next list refresh forgets it only once it has left the page.
      offered.set(button, request.vault_key);
      button.hidden = !names.has(request.vault_key) || !takesCredential(button);
      button.addEventListener("click", () => {
        controls.busy(true);
        button.disabled = true;
        note.hidden = true;
        feedback.status("Touch your passkey: it signs the approval and opens the saved credential in this browser…");
        void approveWithSaved(request, request.vault_key).then(async (result) => {
          button.disabled = false;
          if (!result.ok && result.failure.error === "prf_unsupported") {
            // The typed path stays: say why the one-touch one cannot work with this passkey.
            setText(note, NO_PRF);
            note.hidden = false;
            button.hidden = true;
          }
          await controls.finish(result);
        });
      });
    },
  };
}
