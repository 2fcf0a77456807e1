// Reads one user's presence COUNT times in a row with the official JavaScript Graph client, whose
// default middleware retries a 429 after its Retry-After.
//
// Environment: AUTHORITY (e.g. https://127.0.0.1:8443), ACCESS_TOKEN (an app token), USER_ID, COUNT;
// NODE_EXTRA_CA_CERTS must name the server's CA certificate.
// Prints one JSON line {"availabilities": [...]} and exits 0; on any error prints statusCode, code and
// message to stderr and exits 1. Driven by tests/e2e/test_throttled_processes.py.

import { Client } from "@microsoft/microsoft-graph-client";
import { describe, required } from "./common.mjs";

async function main() {
  const authority = required("AUTHORITY").replace(/\/+$/, "");
  const token = required("ACCESS_TOKEN");
  const client = Client.initWithMiddleware({
    authProvider: { getAccessToken: async () => token },
    baseUrl: `${authority}/`,
    customHosts: new Set([new URL(authority).hostname]),
  });
  const availabilities = [];
  for (let i = 0; i < Number(required("COUNT")); i++) {
    const presence = await client.api(`/users/${required("USER_ID")}/presence`).get();
    availabilities.push(presence.availability);
  }
  process.stdout.write(JSON.stringify({ availabilities }) + "\n");
}

try {
  await main();
} catch (error) {
  process.stderr.write(JSON.stringify(describe(error)) + "\n");
  process.exit(1);
}
