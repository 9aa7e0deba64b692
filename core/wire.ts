/**
 * The JSON bodies of the public API (README, "A handoff in five requests" and "Contract notes"),
 * as types: the worker checks what it builds against them with `satisfies`; the approval page,
 * the SDK and the tests read answers as them.
 * Field names are the wire's (snake_case); domain values inside the worker are camelCase.
 */
import type { PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON } from "@simplewebauthn/server";
import type { JWK } from "jose";

/** RFC 6749 §5.2: every error answer. */
export interface ErrorBody {
  error: string;
  error_description: string;
}

// ---- Admin API ---------------------------------------------------------------------------------

export interface AccountBody {
  account_id: string;
  name: string;
  operator_email: string;
  /** `POST /v1/admin/accounts` only: the first operator (owner) and its enrolment link. */
  operator_id?: string;
  invitation_url?: string;
}

/** README, "Approval policies (N-of-M)": `vault_keys` absent covers every request. */
export interface ApprovalPolicyBody {
  approvals_required: number;
  vault_keys?: string[];
}

/** `GET` and `PATCH /v1/admin/accounts/{id}`: the account without its webhook secret. */
export interface AccountDetailBody extends AccountBody {
  webhook_url: string | null;
  webhook_format: "keyferry" | "slack";
  created_at: string;
  approval_policy: ApprovalPolicyBody;
}

/** `PATCH`: setting a `webhook_url` returns its signing secret, once. */
export interface AccountUpdatedBody extends AccountDetailBody {
  webhook_secret?: string;
}

/** A decision's actor; the passkey fields are null under the email binding. */
export interface DecisionActorBody {
  operator_id: string | null;
  email: string;
  passkey_id: string | null;
  aaguid: string | null;
  user_verified: boolean | null;
  ip: string;
  user_agent: string;
}

export interface AuditEventBody {
  at: string;
  type: string;
  request_id?: string;
  agent_id?: string;
  /** "admin" or an email, or for a decision who made it. */
  actor?: string | DecisionActorBody;
  detail?: Record<string, unknown>;
}

/** `GET /v1/admin/accounts/{id}/audit`, newest first. */
export interface AuditLogBody {
  events: AuditEventBody[];
}

export interface AgentCreatedBody {
  agent_id: string;
  /** Shown once; stored only as a hash. */
  api_key: string;
  name: string;
  email: string | null;
  account_id: string;
  backchannel_client_notification_endpoint?: string;
  backchannel_token_delivery_mode?: "ping";
}

// ---- Agent API and OAuth -----------------------------------------------------------------------

/** RFC 8628 §3.2, from `/v1/credentials/request` and `/oauth/device_authorization`. */
export interface DeviceAuthorizationBody {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
  message: string;
}

/** `hint: "push"`: nothing for the operator to type. */
export interface PushAuthorizationBody {
  device_code: string;
  expires_in: number;
  interval: number;
  message: string;
}

/** CIBA Core §7.3. */
export interface BackchannelAuthenticationBody {
  auth_req_id: string;
  expires_in: number;
  interval: number;
}

/** `POST /v1/credentials/poll` once approved: the value, or the JWE in end-to-end mode. */
export type PollSuccessBody =
  | { vault_key: string; description: string; credential_value: string }
  | { vault_key: string; description: string; credential_jwe: string };

/** `POST /oauth/token` once approved. */
export interface TokenBody {
  access_token: string;
  token_type: "Bearer" | "DPoP";
  issued_token_type: string;
  vault_key: string;
}

// ---- Operator approval -------------------------------------------------------------------------

export type LookupBody = { user_code: string; email: string } | { link_token: string };

/** What the look-up tells the operator about a request. */
export interface ApprovalRequestBody {
  agent: { id: string; name: string; email: string | null };
  account_id: string;
  /** The account the request is for; `operator_email` is masked (`o•••@example.com`). */
  account: { id: string; name: string; operator_email: string };
  description: string;
  vault_key: string;
  expires_at: string;
  binding_message?: string;
  /** Present only in end-to-end mode: the agent's own key. */
  public_key?: JWK;
  /** The key the browser encrypts the credential to (the agent's key in end-to-end mode). */
  encryption_key: JWK;
  /** The formatted user code, or null where the operator came by link or CIBA. */
  user_code: string | null;
  /** The account has a passkey: every decision is signed with one (challenge, then decide with `webauthn`). */
  passkey_required?: boolean;
  /** A request under an approval policy only, as on the console's list (ConsoleRequestBody). */
  approvals_required?: number;
  approvals?: Array<{ operator_id: string; email: string }>;
  payload_sha256?: string;
}

export interface LookupAnswerBody {
  approval_token: string;
  request: ApprovalRequestBody;
}

/** `POST /v1/approvals/challenge`: `payload_sha256` is the base64url SHA-256 of the exact credential string to be sent. */
export interface DecisionChallengeBody {
  approval_token: string;
  decision: "approve" | "deny";
  payload_sha256?: string;
}

/** `webauthn`: the AuthenticationResponseJSON for that challenge, where the account has passkeys. */
export type DecideBody = { approval_token: string; webauthn?: unknown } & (
  | { decision: "deny" }
  | { decision: "approve"; credential_value: string }
  | { decision: "approve"; credential_jwe: string }
  /** A later approver under an approval policy: its passkey signed the stored credential's `payload_sha256`. */
  | { decision: "approve" }
);

/** `awaiting_approvals`: a request under an approval policy has `approvals` of the `required` distinct operators' approvals. */
export type DecideAnswerBody = { status: "approved" | "denied" } | { status: "awaiting_approvals"; approvals: number; required: number };

/** `POST /v1/approvals/challenge`, the console's `…/challenge` and `/v1/console/sign-in/options`: the options for `navigator.credentials.get()` (WebAuthn L3 §5.5). */
export interface PasskeyChallengeAnswerBody {
  public_key: PublicKeyCredentialRequestOptionsJSON;
}

// ---- Vault -------------------------------------------------------------------------------------

export interface VaultStoredBody {
  vault_key: string;
  updated_at: string;
}

export interface VaultItemBody {
  vault_key: string;
  ciphertext: string;
  updated_at: string;
}

export interface VaultListBody {
  items: VaultStoredBody[];
}

// ---- Return channel ----------------------------------------------------------------------------

/** `GET /v1/credentials/wait` (README, "Return channel"): the subprotocol the server selects. */
export const RETURN_CHANNEL_PROTOCOL = "keyferry.v1";
/**
 * The other offered subprotocols carry what a poll carries in its body and headers, never in the
 * URL (which proxies and logs keep): one handle, and a DPoP proof for a bound request where the
 * client cannot send a `DPoP` header (a browser's WebSocket).
 */
export const WAIT_DEVICE_CODE_PREFIX = "keyferry.device-code.";
export const WAIT_AUTH_REQ_ID_PREFIX = "keyferry.auth-req-id.";
export const WAIT_DPOP_PREFIX = "keyferry.dpop.";

// ---- Console -----------------------------------------------------------------------------------

/** A pending request as `GET /v1/console/requests` lists it (README, "Console"). */
export interface ConsoleRequestBody {
  request_id: string;
  agent: { id: string; name: string; email: string | null };
  description: string;
  vault_key: string;
  expires_at: string;
  binding_message?: string;
  /** End-to-end mode: the agent's key and its fingerprint, as the approval page shows it. */
  fingerprint?: string;
  public_key?: JWK;
  /** The key the browser encrypts the credential to (`public_key`, or the request's own). */
  encryption_key: JWK;
  /**
   * A request that needs several operators (README, "Approval policies (N-of-M)"): how many, who has
   * approved, and once someone has, the digest of the stored credential that a later approver's
   * passkey signs (sent as the challenge's `payload_sha256`, with no credential).
   */
  approvals_required?: number;
  approvals?: Array<{ operator_id: string; email: string }>;
  payload_sha256?: string;
}

/** The approval fields of a request under an approval policy, on the console's list and the page's look-up alike. */
export type ApprovalsBody = Pick<ConsoleRequestBody, "approvals_required" | "approvals" | "payload_sha256">;

export interface ConsoleRequestsBody {
  requests: ConsoleRequestBody[];
}

/** `GET /v1/console/agents` (owners): the account's agents, never their keys. */
export interface AgentListBody {
  agents: Array<{ agent_id: string; name: string; email: string | null; created_at: string }>;
}

/** An operator (README, "Operators and passkeys"), as the admin API and the console show one. */
export interface OperatorBody {
  operator_id: string;
  email: string;
  name: string;
  role: "owner" | "approver";
}

/** 201 to an invitation: the operator and its enrolment link (single use, 24 h). */
export interface OperatorInvitedBody extends OperatorBody {
  invitation_url: string;
}

/** `GET …/operators`: each operator with its passkeys. */
export interface OperatorListBody {
  operators: Array<OperatorBody & { passkeys: Array<{ passkey_id: string; aaguid: string; created_at: string; last_used_at: string | null }> }>;
}

/** `POST /v1/console/enrol/options`: the options for `navigator.credentials.create()` (WebAuthn L3 §5.4), and who is invited. */
export interface EnrolOptionsBody {
  public_key: PublicKeyCredentialCreationOptionsJSON;
  operator: OperatorBody;
}

/** `POST /v1/console/sign-in` and `GET /v1/console/session`: who is signed in, to which account, until when. */
export interface ConsoleSessionBody {
  operator: OperatorBody;
  account_id: string;
  expires_at: string;
}

/** 201 to `POST /v1/console/enrol`: signed in, and the new passkey's ID. */
export interface EnrolledBody extends ConsoleSessionBody {
  passkey_id: string;
}

/** `GET` and `PATCH /v1/console/settings` (owners): the notification settings only; a new webhook's secret once. */
export type NotificationSettingsBody = Pick<AccountUpdatedBody, "webhook_url" | "webhook_format" | "webhook_secret"> & {
  /** `GET` only: the approval policy, shown to owners, set by the admin API alone (README, "Approval policies (N-of-M)"). */
  approval_policy?: ApprovalPolicyBody;
};

// ---- Push (README, "Push to your phone") -------------------------------------------------------

/** `GET /v1/console/push`: the VAPID public key (uncompressed P-256 point, base64url) for `PushManager.subscribe`. */
export interface PushKeyBody {
  application_server_key: string;
}

/** `POST /v1/console/push-subscriptions`. */
export interface PushSubscriptionCreatedBody {
  subscription_id: string;
}

// ---- Saved credentials (README, "Saved credentials") ---------------------------------------------

/** An item of `GET /v1/console/saved`: the passkey and PRF input that reopen it, never its JWE. */
export interface SavedCredentialEntryBody {
  name: string;
  passkey_id: string;
  /** 32 bytes, base64url: the PRF input (`prf.eval.first`). */
  prf_salt: string;
  updated_at: string;
}

export interface SavedCredentialListBody {
  items: SavedCredentialEntryBody[];
}

/** `GET /v1/console/saved/{name}`: the item with its compact JWE (`dir`, `A256GCM`), sealed in the browser. */
export interface SavedCredentialBody extends SavedCredentialEntryBody {
  jwe: string;
}
