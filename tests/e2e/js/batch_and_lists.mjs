// JSON batching and page iteration against presenced with the official JavaScript Graph client.
//
// Usage: node batch_and_lists.mjs batch|users
// Environment: AUTHORITY (e.g. https://127.0.0.1:8443), ACCESS_TOKEN (an app token from
// `presenced token`); for "batch" also FIRST_USER and SECOND_USER (ids or UPNs) and BULK_IDS
// (comma-separated ids). NODE_EXTRA_CA_CERTS must name the server's CA certificate.
//
// batch: BatchRequestContent with a presence read of each user and a getPresencesByUserId, posted
//   to /$batch; prints {"sent": {id: url}, "answers": {id: {"status", "body"}}}, each answer read
//   from BatchResponseContent.
// users: PageIterator from GET /users?$top=100; prints {"firstPage", "complete", "ids"}.
// Prints one JSON line to stdout and exits 0; on any error prints statusCode, code and message to
// stderr and exits 1. Driven by tests/e2e/test_official_batch_and_lists.py.

import { BatchRequestContent, BatchResponseContent, Client, PageIterator } from "@microsoft/microsoft-graph-client";
import { describe, required } from "./common.mjs";

function graphClient(authority, token) {
  // An AuthenticationProvider is anything with getAccessToken(): here, the token we were given.
  const authProvider = { getAccessToken: async () => token };
  // customHosts takes bare hostnames: "127.0.0.1:8443" would silently send no token.
  return Client.initWithMiddleware({
    authProvider,
    baseUrl: `${authority}/`,
    customHosts: new Set([new URL(authority).hostname]),
  });
}

async function batch(client, authority) {
  const first = required("FIRST_USER");
  const second = required("SECOND_USER");
  const ids = required("BULK_IDS").split(",");
  // Node's Request needs an absolute URL. 3.0.7 sends the path after the host as the step's url, and
  // keeps a version segment if there is one (microsoftgraph/msgraph-sdk-javascript#1451): hence no /v1.0.
  const content = new BatchRequestContent([
    { id: "first", request: new Request(`${authority}/users/${first}/presence`, { method: "GET" }) },
    { id: "second", request: new Request(`${authority}/users/${second}/presence`, { method: "GET" }) },
    {
      id: "bulk",
      request: new Request(`${authority}/communications/getPresencesByUserId`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ ids }),
      }),
    },
  ]);
  const payload = await content.getContent();
  const sent = Object.fromEntries(payload.requests.map((request) => [request.id, request.url]));
  const answer = new BatchResponseContent(await client.api("/$batch").post(payload));
  const answers = {};
  for (const [id, response] of answer.getResponses()) {
    const text = await response.text();
    answers[id] = { status: response.status, body: text ? JSON.parse(text) : null };
  }
  return { sent, answers };
}

async function users(client) {
  const first = await client.api("/users").top(100).get();
  const ids = [];
  const iterator = new PageIterator(client, first, (user) => {
    ids.push(user.id);
    return true;
  });
  await iterator.iterate();
  return { firstPage: first.value.length, complete: iterator.isComplete(), ids };
}

async function main() {
  const mode = process.argv[2];
  const authority = required("AUTHORITY").replace(/\/+$/, "");
  const client = graphClient(authority, required("ACCESS_TOKEN"));
  let output;
  if (mode === "batch") {
    output = await batch(client, authority);
  } else if (mode === "users") {
    output = await users(client);
  } else {
    throw new Error(`unknown mode ${JSON.stringify(mode)}: give batch or users`);
  }
  process.stdout.write(JSON.stringify(output) + "\n");
}

try {
  await main();
} catch (error) {
  process.stderr.write(JSON.stringify(describe(error)) + "\n");
  process.exitCode = 1;
}
