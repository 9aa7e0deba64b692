/**
 * The account's side of the console: the audit log for everyone; agents, operators and notification
 * settings for owners (the server refuses them to approvers too). Names and emails are set as text.
 */
import { setText } from "../dom";
import { getJson, sendJson, type Operator } from "./api";
import type { Feedback } from "./feedback";
import type { ApprovalPolicyBody, NotificationSettingsBody } from "../../../core/wire";

interface AgentBody { agent_id: string; name: string; email: string | null; created_at: string }
interface AuditEvent { at: string; type: string; request_id?: string; agent_id?: string; actor?: unknown }
type OperatorWithPasskeys = Operator & { passkeys?: unknown[] };

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

export interface AccountView {
  refreshAudit(): Promise<void>;
}

export function accountView(feedback: Feedback, me: Operator): AccountView {
  const audit = byId<HTMLOListElement>("audit");

  async function refreshAudit(): Promise<void> {
    const result = await getJson<{ events: AuditEvent[] }>("/v1/console/audit");
    if (!result.ok) return feedback.error(result.failure.description);
    audit.replaceChildren(
      ...result.value.events.slice(0, 100).map((event) => {
        const item = document.createElement("li");
        const time = document.createElement("time");
        time.dateTime = event.at;
        setText(time, new Date(event.at).toLocaleString());
        const what = document.createElement("span");
        const actor = typeof event.actor === "string" ? event.actor : event.actor && typeof event.actor === "object" && "email" in event.actor ? String(event.actor.email) : "";
        setText(what, [event.type, event.agent_id, event.request_id, actor].filter(Boolean).join(" · "));
        item.append(time, what);
        return item;
      }),
    );
  }
  byId("audit-refresh").addEventListener("click", () => void refreshAudit());

  if (me.role === "owner") wireOwner(feedback, me);
  return { refreshAudit };
}

function wireOwner(feedback: Feedback, me: Operator): void {
  for (const id of ["owner-agents", "owner-operators", "owner-settings"]) byId(id).hidden = false;
  const agents = byId<HTMLUListElement>("agents");
  const operators = byId<HTMLUListElement>("operators");

  /** One row: text, and a button that asks before it acts. */
  function row(text: string, action: string, confirmText: string, act: () => Promise<void>): HTMLLIElement {
    const item = document.createElement("li");
    const label = document.createElement("span");
    setText(label, text);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button button-danger";
    setText(button, action);
    button.setAttribute("aria-label", `${action} ${text}`);
    button.addEventListener("click", () => {
      if (confirm(confirmText)) void act();
    });
    item.append(label, button);
    return item;
  }

  async function loadAgents(): Promise<void> {
    const result = await getJson<{ agents: AgentBody[] }>("/v1/console/agents");
    if (!result.ok) return feedback.error(result.failure.description);
    agents.replaceChildren(
      ...result.value.agents.map((agent) =>
        row(`${agent.name} (${agent.agent_id})`, "Revoke", `Revoke ${agent.name}? Its key stops working and its pending requests are denied.`, async () => {
          const done = await sendJson("DELETE", `/v1/console/agents/${encodeURIComponent(agent.agent_id)}`);
          if (!done.ok) return feedback.error(done.failure.description);
          feedback.status(`Revoked ${agent.name}.`);
          await loadAgents();
        }),
      ),
    );
  }

  async function loadOperators(): Promise<void> {
    const result = await getJson<{ operators: OperatorWithPasskeys[] }>("/v1/console/operators");
    if (!result.ok) return feedback.error(result.failure.description);
    operators.replaceChildren(
      ...result.value.operators.map((operator) => {
        const text = `${operator.email} · ${operator.role} · ${operator.passkeys?.length ?? 0} passkey(s)`;
        if (operator.operator_id === me.operator_id) {
          const item = document.createElement("li");
          setText(item, `${text} (you)`);
          return item;
        }
        return row(text, "Remove", `Remove ${operator.email}? Their passkeys and sessions stop working at once.`, async () => {
          const done = await sendJson("DELETE", `/v1/console/operators/${encodeURIComponent(operator.operator_id)}`);
          if (!done.ok) return feedback.error(done.failure.description);
          feedback.status(`Removed ${operator.email}.`);
          await loadOperators();
        });
      }),
    );
  }

  byId<HTMLFormElement>("agent-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = byId<HTMLInputElement>("agent-name-input");
    void (async () => {
      const result = await sendJson<{ name: string; api_key: string }>("POST", "/v1/console/agents", { name: input.value.trim() });
      if (!result.ok) return feedback.error(result.failure.description);
      input.value = "";
      setText(byId("agent-key-name"), result.value.name);
      setText(byId("agent-key-value"), result.value.api_key);
      byId("agent-key").hidden = false;
      feedback.status(`Created ${result.value.name}. Copy its key now: it is not shown again.`);
      await loadAgents();
    })();
  });

  byId<HTMLFormElement>("operator-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const email = byId<HTMLInputElement>("operator-email-input");
    const role = byId<HTMLSelectElement>("operator-role-input");
    void (async () => {
      const result = await sendJson<Operator>("POST", "/v1/console/operators", { email: email.value.trim(), role: role.value });
      if (!result.ok) return feedback.error(result.failure.description);
      email.value = "";
      feedback.status(`Invited ${result.value.email}: the invitation is on its way by email.`);
      await loadOperators();
    })();
  });

  const webhookUrl = byId<HTMLInputElement>("webhook-url-input");
  const webhookFormat = byId<HTMLSelectElement>("webhook-format-input");
  byId<HTMLFormElement>("settings-form").addEventListener("submit", (event) => {
    event.preventDefault();
    void (async () => {
      const url = webhookUrl.value.trim();
      const result = await sendJson<{ webhook_secret?: string }>("PATCH", "/v1/console/settings", { webhook_url: url === "" ? null : url, webhook_format: webhookFormat.value });
      if (!result.ok) return feedback.error(result.failure.description);
      byId("webhook-secret").hidden = !result.value.webhook_secret;
      setText(byId("webhook-secret-value"), result.value.webhook_secret ?? "");
      feedback.status("Notification settings saved.");
    })();
  });

  void loadAgents();
  void loadOperators();
  void (async () => {
    const settings = await getJson<NotificationSettingsBody>("/v1/console/settings");
    if (!settings.ok) return;
    webhookUrl.value = settings.value.webhook_url ?? "";
    webhookFormat.value = settings.value.webhook_format;
    setText(byId("approval-policy"), policyText(settings.value.approval_policy));
  })();
}

/** README, "Approval policies (N-of-M)": the account's policy in a sentence. */
function policyText(policy: ApprovalPolicyBody | undefined): string {
  if (!policy || policy.approvals_required <= 1) return "One operator's approval is enough for every request.";
  const which = policy.vault_keys ? `requests for vault keys matching ${policy.vault_keys.join(", ")}` : "every request";
  return `${policy.approvals_required} different operators must approve ${which}, each with their own passkey.`;
}
