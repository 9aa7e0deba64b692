/** Operators and passkeys in integration tests: invite, enrol with the software authenticator, sign in. */
import type { AccountBody, ConsoleSessionBody, EnrolledBody, EnrolOptionsBody, PasskeyChallengeAnswerBody } from "../../../core/wire";
import { admin, call, type Answer } from "./api";
import { SoftAuthenticator } from "./soft-authenticator";

export const ORIGIN = "https://keyferry.test";
/** What the console page sends on every state change. */
export const consoleHeaders = (cookie?: string) => ({ Origin: ORIGIN, ...(cookie ? { Cookie: cookie } : {}) });

export const invitationOf = (url: string) => url.slice(url.indexOf("#invite=") + "#invite=".length);

export async function newAccountWithOwner(email = `owner-${crypto.randomUUID()}@example.com`) {
  const account = await call<AccountBody>("POST", "/v1/admin/accounts", { headers: admin, json: { name: "Acme", operator_email: email } });
  return { accountId: account.body.account_id, operatorId: account.body.operator_id!, invitation: invitationOf(account.body.invitation_url!), email };
}

/** Enrols a passkey from an invitation; returns the console cookie the enrolment set. */
export async function enrol(invitation: string, authenticator = new SoftAuthenticator()) {
  const options = await call<Answer<EnrolOptionsBody>>("POST", "/v1/console/enrol/options", { headers: consoleHeaders(), json: { invitation } });
  if (options.status !== 200) throw new Error(`enrol options: ${options.status} ${JSON.stringify(options.body)}`);
  const webauthn = await authenticator.register(options.body.public_key);
  const enrolled = await call<Answer<EnrolledBody>>("POST", "/v1/console/enrol", { headers: consoleHeaders(), json: { invitation, webauthn } });
  const cookie = enrolled.headers.get("Set-Cookie")?.split(";")[0];
  return { enrolled, cookie, authenticator, options };
}

export async function signIn(authenticator: SoftAuthenticator, opts: Parameters<SoftAuthenticator["assert"]>[1] = {}) {
  const options = await call<Answer<PasskeyChallengeAnswerBody>>("POST", "/v1/console/sign-in/options", { headers: consoleHeaders(), json: {} });
  const webauthn = await authenticator.assert(options.body.public_key, opts);
  const answer = await call<Answer<ConsoleSessionBody>>("POST", "/v1/console/sign-in", { headers: consoleHeaders(), json: { webauthn } });
  return { answer, webauthn, cookie: answer.headers.get("Set-Cookie")?.split(";")[0] };
}
