// Reads a user's presence from presenced with the official JavaScript Graph client.
//
// Environment: AUTHORITY (e.g. https://127.0.0.1:8443), TENANT_ID, CLIENT_ID, CLIENT_SECRET,
// USER_ID; NODE_EXTRA_CA_CERTS must name the server's CA certificate.
// Prints one JSON line {"presence": ..., "batch": ...} to stdout and exits 0; on any error
// prints statusCode, code and message to stderr and exits 1.
// Driven by tests/e2e/test_javascript_client.py.

import { ClientSecretCredential } from "@azure/identity";
import { Client } from "@microsoft/microsoft-graph-client";
import { TokenCredentialAuthenticationProvider } from "@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials/index.js";
import { describe, required } from "./common.mjs";

async function main() {
  // No trailing slash: @azure/identity appends "/{tenant}/oauth2/v2.0/token" itself.
  const authority = required("AUTHORITY").replace(/\/+$/, "");
  const tenantId = required("TENANT_ID");
  const clientId = required("CLIENT_ID");
  const clientSecret = required("CLIENT_SECRET");
  const userId = required("USER_ID");

  const credential = new ClientSecretCredential(tenantId, clientId, clientSecret, {
    authorityHost: authority,
    disableInstanceDiscovery: true,
  });
  const authProvider = new TokenCredentialAuthenticationProvider(credential, {
    scopes: ["https://graph.microsoft.com/.default"],
  });
  // customHosts takes bare hostnames: "127.0.0.1:8443" would silently send no token.
  const client = Client.initWithMiddleware({
    authProvider,
    baseUrl: `${authority}/`,
    customHosts: new Set([new URL(authority).hostname]),
  });

  const presence = await client.api(`/users/${encodeURIComponent(userId)}/presence`).get();
  const batch = await client.api("/communications/getPresencesByUserId").post({ ids: [userId] });
  process.stdout.write(JSON.stringify({ presence, batch }) + "\n");
}

try {
  await main();
} catch (error) {
  process.stderr.write(JSON.stringify(describe(error)) + "\n");
  process.exitCode = 1;
}
