import { formatUserCode } from "../core/user-code";
import { advertisedInterval } from "./config";
import type { IssuedRequest } from "./issue-request";
import type { DeviceAuthorizationBody, PushAuthorizationBody } from "../core/wire";

/** RFC 8628 §3.2 device authorization response. */
export function deviceAuthorizationResponse(issued: IssuedRequest, origin: string) {
  const userCode = formatUserCode(issued.userCode);
  const verificationUri = `${origin}/approve`;
  return {
    device_code: issued.handle,
    user_code: userCode,
    verification_uri: verificationUri,
    verification_uri_complete: `${verificationUri}?user_code=${userCode}`,
    expires_in: Math.round((issued.expiresAt - Date.now()) / 1000),
    interval: advertisedInterval(issued.interval),
    message: `Ask your operator to visit ${verificationUri} and enter code ${userCode}`,
  } satisfies DeviceAuthorizationBody;
}

/** `hint: "push"`: nothing to type, so no user code or verification URI (README, "Device flow or push"). */
export function pushResponse(issued: IssuedRequest) {
  return {
    device_code: issued.handle,
    expires_in: Math.round((issued.expiresAt - Date.now()) / 1000),
    interval: advertisedInterval(issued.interval),
    message: "Your operator was notified and can approve from the link they received; keep polling.",
  } satisfies PushAuthorizationBody;
}
