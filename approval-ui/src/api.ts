import type { JWK } from "jose";
import type { AuthenticationResponseJSON, PublicKeyCredentialRequestOptionsJSON } from "@simplewebauthn/browser";
import type { ApprovalRequestBody, ApprovalsBody, DecideAnswerBody, DecideBody, DecisionChallengeBody, LookupBody } from "../../core/wire";

/** What the look-up tells the operator about a request, with the optional fields made explicit. */
export interface ApprovalRequest extends Omit<ApprovalRequestBody, "account" | "binding_message" | "public_key" | "passkey_required"> {
  /** Every decision is signed with an operator's passkey (false: the email binding, with a warning). */
  passkey_required: boolean;
  /** Absent from servers that predate it. */
  account: NonNullable<ApprovalRequestBody["account"]> | null;
  binding_message: string | null;
  public_key: JWK | null;
}

export interface LookupResult {
  approvalToken: string;
  request: ApprovalRequest;
  /** Server clock at the time of the answer (from the Date header), for a skew-free countdown. */
  serverNow: number;
}

export interface ApiError {
  /** HTTP status, or 0 when the server could not be reached or answered nonsense. */
  status: number;
  /** The wire `error` code, or `network_error` / `bad_response` for failures before one. */
  error: string;
  description: string;
  /** Seconds from a 429's Retry-After header. */
  retryAfter: number | null;
}

export type ApiResult<T> = { ok: true; value: T } | { ok: false; failure: ApiError };

export function lookup(input: LookupBody): Promise<ApiResult<LookupResult>> {
  return call("/v1/approvals/lookup", input, (body, response) => {
    const parsed = parseLookup(body);
    if (!parsed) return null;
    const date = Date.parse(response.headers.get("date") ?? "");
    return { ...parsed, serverNow: Number.isNaN(date) ? Date.now() : date };
  });
}

/**
 * The page only ever sends a JWE: the credential is encrypted before it leaves the browser. A later
 * approver under an approval policy sends none: its passkey signs the stored one's digest.
 */
export type Decision = { decision: "deny" } | { decision: "approve"; credential_jwe: string } | { decision: "approve" };

/** A passkey challenge committing to this decision and the exact JWE (its SHA-256); the browser signs it. */
export function challenge(approvalToken: string, body: Omit<DecisionChallengeBody, "approval_token">): Promise<ApiResult<PublicKeyCredentialRequestOptionsJSON>> {
  return call("/v1/approvals/challenge", { approval_token: approvalToken, ...body } satisfies DecisionChallengeBody, (answer) =>
    isRecord(answer) && isRecord(answer.public_key) && typeof answer.public_key.challenge === "string" ? (answer.public_key as unknown as PublicKeyCredentialRequestOptionsJSON) : null,
  );
}

export function decide(approvalToken: string, decision: Decision, webauthn?: AuthenticationResponseJSON): Promise<ApiResult<DecideAnswerBody["status"]>> {
  return call("/v1/approvals/decide", { approval_token: approvalToken, ...decision, ...(webauthn ? { webauthn } : {}) } satisfies DecideBody, (body) => {
    const status = isRecord(body) ? body.status : undefined;
    return status === "approved" || status === "denied" || status === "awaiting_approvals" ? status : null;
  });
}

async function call<T>(
  path: string,
  payload: unknown,
  parse: (body: unknown, response: Response) => T | null,
): Promise<ApiResult<T>> {
  let response: Response;
  let body: unknown;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(payload),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    return failure(0, "network_error", "");
  }
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.ok) {
    const value = parse(body, response);
    return value === null ? failure(0, "bad_response", "") : { ok: true, value };
  }
  const error = isRecord(body) && typeof body.error === "string" ? body.error : "";
  const description = isRecord(body) && typeof body.error_description === "string" ? body.error_description : "";
  const retryAfter = Number.parseInt(response.headers.get("retry-after") ?? "", 10);
  return { ok: false, failure: { status: response.status, error, description, retryAfter: Number.isNaN(retryAfter) ? null : retryAfter } };
}

function failure(status: number, error: string, description: string): { ok: false; failure: ApiError } {
  return { ok: false, failure: { status, error, description, retryAfter: null } };
}

/** Checks every field the page uses; anything unexpected is treated as a bad response. */
function parseLookup(body: unknown): Omit<LookupResult, "serverNow"> | null {
  if (!isRecord(body) || typeof body.approval_token !== "string") return null;
  const r = body.request;
  if (!isRecord(r) || !isRecord(r.agent)) return null;
  const { agent } = r;
  if (typeof agent.id !== "string" || typeof agent.name !== "string") return null;
  if (agent.email !== null && agent.email !== undefined && typeof agent.email !== "string") return null;
  for (const field of ["account_id", "description", "vault_key", "expires_at"] as const) {
    if (typeof r[field] !== "string") return null;
  }
  if (Number.isNaN(Date.parse(r.expires_at as string))) return null;
  if (!isJwk(r.encryption_key)) return null;
  if (r.public_key !== undefined && r.public_key !== null && !isJwk(r.public_key)) return null;
  const account = r.account === undefined ? null : parseAccount(r.account);
  if (account === undefined) return null;
  const approvals = parseApprovals(r);
  if (approvals === undefined) return null;
  return {
    approvalToken: body.approval_token,
    request: {
      agent: { id: agent.id, name: agent.name, email: typeof agent.email === "string" ? agent.email : null },
      account_id: r.account_id as string,
      account,
      description: r.description as string,
      vault_key: r.vault_key as string,
      expires_at: r.expires_at as string,
      user_code: typeof r.user_code === "string" ? r.user_code : null,
      binding_message: typeof r.binding_message === "string" && r.binding_message !== "" ? r.binding_message : null,
      public_key: isJwk(r.public_key) ? r.public_key : null,
      encryption_key: r.encryption_key,
      passkey_required: r.passkey_required === true,
      ...approvals,
    },
  };
}

/** A request under an approval policy (README, "Approval policies (N-of-M)"): its fields, none, or undefined when malformed. */
function parseApprovals(r: Record<string, unknown>): ApprovalsBody | undefined {
  const { approvals_required: required, approvals, payload_sha256: digest } = r;
  if (required === undefined) return {};
  if (typeof required !== "number" || !Array.isArray(approvals)) return undefined;
  if (digest !== undefined && typeof digest !== "string") return undefined;
  const approvers: Array<{ operator_id: string; email: string }> = [];
  for (const a of approvals as unknown[]) {
    if (!isRecord(a) || typeof a.operator_id !== "string" || typeof a.email !== "string") return undefined;
    approvers.push({ operator_id: a.operator_id, email: a.email });
  }
  return { approvals_required: required, approvals: approvers, ...(digest !== undefined ? { payload_sha256: digest } : {}) };
}

/** The account the request is for: null when the server does not say, undefined when malformed. */
function parseAccount(value: unknown): ApprovalRequest["account"] | undefined {
  if (!isRecord(value)) return undefined;
  const { id, name, operator_email } = value;
  if (typeof id !== "string" || typeof name !== "string" || typeof operator_email !== "string") return undefined;
  return { id, name, operator_email };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isJwk(value: unknown): value is JWK {
  return isRecord(value) && typeof value.kty === "string";
}
