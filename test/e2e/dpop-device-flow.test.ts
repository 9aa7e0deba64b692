// RFC 9449 end to end: openid-client's device flow with a DPoP handle and `dpop_jkt` against a real
// `wrangler dev`, unmodified; a poll of the same code without the proof is refused and consumes nothing.
import { randomBytes } from "node:crypto";
import { calculateJwkThumbprint, exportJWK } from "jose";
import * as client from "openid-client";
import { describe, expect, it } from "vitest";
import { api, createAccountAndAgent } from "./support/dev-server";
import { useDevServer } from "./support/use-dev-server";
import { operatorDecides, pollCredential } from "./support/approval";

const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

describe("DPoP-bound device flow with openid-client", () => {
  const server = useDevServer({ vars: { POLL_INTERVAL_SECONDS: "1" } });

  it("completes with getDPoPHandle and dpop_jkt; a poll without the proof is refused and does not consume the delivery", async () => {
    const ids = await createAccountAndAgent(server, { agentName: "dpop-bot", agentEmail: "bot@example.com" });
    const config = await client.discovery(new URL(server.url), ids.agentId, undefined, client.ClientSecretPost(ids.apiKey), {
      algorithm: "oauth2",
      execute: [client.allowInsecureRequests],
    });
    expect(config.serverMetadata().dpop_signing_alg_values_supported).toContain("ES256");
    const keyPair = await client.randomDPoPKeyPair("ES256");
    const dpop = client.getDPoPHandle(config, keyPair);
    const dpopJkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey));

    const authorization = await client.initiateDeviceAuthorization(config, { description: "Stripe secret key", vault_key: "stripe-sk", dpop_jkt: dpopJkt });
    const secret = `sk_live_${randomBytes(12).toString("hex")}`;
    await operatorDecides(server, authorization.user_code, ids.operatorEmail, { decision: "approve", credential_value: secret });

    // Whoever holds the device code without the key gets nothing, on either polling endpoint.
    const plain = await pollCredential(server, authorization.device_code);
    expect(plain).toMatchObject({ status: 400, json: { error: "invalid_dpop_proof" } });
    const token = await api(server, "POST", "/oauth/token", new URLSearchParams({
      grant_type: DEVICE_CODE_GRANT,
      device_code: authorization.device_code,
      client_id: ids.agentId,
      client_secret: ids.apiKey,
    }));
    expect(token).toMatchObject({ status: 400, json: { error: "invalid_dpop_proof" } });

    // The agent, with its key, still receives the credential, as a DPoP-bound token.
    const tokens = await client.pollDeviceAuthorizationGrant(config, authorization, undefined, { DPoP: dpop });
    expect(tokens.access_token).toBe(secret);
    expect(tokens.token_type).toBe("dpop");
  });
});
