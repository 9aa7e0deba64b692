/**
 * The operator console (README, "Console"): enrol a passkey from an invitation (`#invite=`), sign in
 * with one, then the account's pending requests, live, and its audit log; owners also manage agents,
 * operators and notifications. No framework; every agent-supplied string is rendered as text.
 */
import { setText } from "../dom";
import { getJson, sendJson, type SessionBody } from "./api";
import { accountView } from "./account-view";
import { feedbackLines } from "./feedback";
import { enrol, signIn } from "./passkey";
import { pushControls } from "./push";
import { requestsView } from "./requests-view";
import { savedView } from "./saved-view";

const feedback = feedbackLines();
const view = (id: "view-enrol" | "view-sign-in" | "view-console") => {
  for (const other of ["view-enrol", "view-sign-in", "view-console"]) (document.getElementById(other) as HTMLElement).hidden = other !== id;
  (document.querySelector(`#${id} h1`) as HTMLElement).focus();
};

/** The invitation stays in the fragment, which never reaches a server log; it is dropped once used. */
const invitation = new URLSearchParams(location.hash.slice(1)).get("invite");

function showConsole(session: SessionBody): void {
  const who = document.getElementById("who") as HTMLElement;
  setText(who, `${session.operator.email} (${session.operator.role})`);
  who.hidden = false;
  const signOut = document.getElementById("sign-out") as HTMLButtonElement;
  signOut.hidden = false;
  signOut.addEventListener("click", () => void sendJson("DELETE", "/v1/console/session").then(() => location.replace("/console")));
  view("view-console");
  const account = accountView(feedback, session.operator);
  const saved = savedView(feedback);
  requestsView(feedback, () => void account.refreshAudit(), session.operator.operator_id, saved).start();
  saved.start();
  pushControls(feedback);
  void account.refreshAudit();
}

async function start(): Promise<void> {
  if (invitation) {
    view("view-enrol");
    const button = document.getElementById("enrol") as HTMLButtonElement;
    button.addEventListener("click", () => {
      button.disabled = true;
      feedback.status("Follow your browser's prompt to create the passkey…");
      void enrol(invitation).then((result) => {
        button.disabled = false;
        if (!result.ok) return feedback.error(result.failure.description);
        history.replaceState(null, "", "/console");
        feedback.status("Your passkey is created and you are signed in.");
        showConsole(result.value);
      });
    });
    return;
  }
  const session = await getJson<SessionBody>("/v1/console/session");
  if (session.ok) return showConsole(session.value);
  view("view-sign-in");
  const button = document.getElementById("sign-in") as HTMLButtonElement;
  button.addEventListener("click", () => {
    button.disabled = true;
    feedback.clear();
    void signIn().then((result) => {
      button.disabled = false;
      if (!result.ok) return feedback.error(result.failure.status === 403 ? "That passkey is not one of this service's operators." : result.failure.description);
      feedback.clear();
      showConsole(result.value);
    });
  });
}

void start();
