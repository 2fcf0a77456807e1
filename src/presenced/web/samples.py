"""Code samples of the permissions explorer: one Graph call in C#, JavaScript, PowerShell and Python.

Each sample signs in against this server the way its permission asks, then makes one call the
permission allows. For an application permission the app signs in with a client secret and
``/.default``. For a delegated permission a user signs in: with a device code in Python and
PowerShell, in a browser in C# and JavaScript (MSAL.NET and MSAL for Node ask for a device code's
token with the short grant type ``device_code``, and this server takes only the URN form).

They follow what the end-to-end tests run (``tests/e2e``): the sign-in authority is this server
with instance discovery off, and the Graph client gets this server's base URL and explicit scopes
(``docs/identity.md``). The C# Graph client gets an authentication provider that names this host:
with the ``GraphServiceClient(credential, scopes, baseUrl)`` constructor it would send the token to
Microsoft's Graph hosts only, so to this server none at all.

The templates are plain strings with ``<<NAME>>`` markers, filled by ``_fill``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from presenced.auth.permissions import GRAPH_RESOURCE, Permission, PermissionKind

LANGUAGES = (("csharp", "C#"), ("javascript", "JavaScript"), ("powershell", "PowerShell"), ("python", "Python"))
TENANT_PLACEHOLDER = "{tenant-id}"
_MARKER = re.compile(r"<<([A-Z_]+)>>")


def _fill(template: str, **values: str) -> str:
    return _MARKER.sub(lambda m: values[m.group(1).lower()], template)


@dataclass(frozen=True, slots=True)
class Call:
    """One Graph call, written for each client."""

    method: str
    #: Below the version, with ``{name}`` for each of ``placeholders`` (``{clientId}`` is always there).
    path: str
    #: (variable, placeholder text) of the ids the caller fills in, e.g. ("userId", "{user-id}").
    placeholders: tuple[tuple[str, str], ...]
    python: str
    python_imports: tuple[str, ...]
    csharp: str
    #: The request body as a JavaScript expression and as a PowerShell hashtable (None: no body).
    javascript_body: str | None = None
    powershell_body: str | None = None
    #: C# ``using`` lines the call needs.
    csharp_usings: tuple[str, ...] = ()
    #: A line said before the call (e.g. that it deletes something).
    warning: str = ""


_USER = (("userId", "{user-id}"),)
_SET_PRESENCE_JS = '{ sessionId: clientId, availability: "Busy", activity: "InACall", expirationDuration: "PT1H" }'
_SET_PRESENCE_PS = (
    '@{ sessionId = $clientId; availability = "Busy"; activity = "InACall"; expirationDuration = "PT1H" }'
)
_SET_PRESENCE_PY = """\
    # sessionId is the calling application's id.
    await client.{target}.presence.set_presence.post(
        SetPresencePostRequestBody(
            session_id=CLIENT_ID, availability="Busy", activity="InACall", expiration_duration=timedelta(hours=1)
        )
    )
    print("presence set")"""
_SET_PRESENCE_PY_IMPORTS = (
    "from datetime import timedelta",
    "from msgraph.generated.users.item.presence.set_presence.set_presence_post_request_body import "
    "SetPresencePostRequestBody",
)
_SET_PRESENCE_CS = """\
// SessionId is the calling application's id.
await graph.{target}.Presence.SetPresence.PostAsync(new {namespace}.Presence.SetPresence.SetPresencePostRequestBody
{{
    SessionId = clientId,
    Availability = "Busy",
    Activity = "InACall",
    ExpirationDuration = TimeSpan.FromHours(1),
}});
Console.WriteLine("presence set");"""
_REPLY = "Out of the office today."
_REPLIES_JS = f'{{ automaticRepliesSetting: {{ status: "alwaysEnabled", internalReplyMessage: "{_REPLY}" }} }}'
_REPLIES_PS = f'@{{ automaticRepliesSetting = @{{ status = "alwaysEnabled"; internalReplyMessage = "{_REPLY}" }} }}'
_REPLIES_PY = """\
    settings = await client.{target}.mailbox_settings.patch(
        MailboxSettings(
            automatic_replies_setting=AutomaticRepliesSetting(
                status=AutomaticRepliesStatus.AlwaysEnabled, internal_reply_message="Out of the office today."
            )
        )
    )
    print(settings)"""
_REPLIES_PY_IMPORTS = (
    "from msgraph.generated.models.automatic_replies_setting import AutomaticRepliesSetting",
    "from msgraph.generated.models.automatic_replies_status import AutomaticRepliesStatus",
    "from msgraph.generated.models.mailbox_settings import MailboxSettings",
)
_REPLIES_CS = """\
var settings = await graph.{target}.MailboxSettings.PatchAsync(new MailboxSettings
{{
    AutomaticRepliesSetting = new AutomaticRepliesSetting
    {{
        Status = AutomaticRepliesStatus.AlwaysEnabled,
        InternalReplyMessage = "Out of the office today.",
    }},
}});
Console.WriteLine(settings?.AutomaticRepliesSetting?.Status);"""


def _get(path: str, placeholders: tuple[tuple[str, str], ...], python: str, csharp: str, shown: str) -> Call:
    """A read; ``shown``: the C# expression printed of the ``result``."""
    return Call("GET", path, placeholders, f"    result = await {python}.get()\n    print(result)", (),
                f"var result = await {csharp}.GetAsync();\nConsole.WriteLine({shown});")  # fmt: skip


def _delete(path: str, placeholders: tuple[tuple[str, str], ...], python: str, csharp: str, what: str) -> Call:
    return Call("DELETE", path, placeholders, f"    await {python}.delete()\n    print(\"deleted\")", (),
                f"await {csharp}.DeleteAsync();\nConsole.WriteLine(\"deleted\");",
                warning=f"This deletes the {what}: try it on one made for testing.")  # fmt: skip


#: The calls a sample may show, by endpoint ``operation_id``: a permission's sample shows the first one
#: it allows (not only for the caller's own user), so a write before a read, many users before one.
CALLS: dict[str, Call] = {
    "me.setPresence": Call(
        "POST", "/me/presence/setPresence", (), _SET_PRESENCE_PY.format(target="me"), _SET_PRESENCE_PY_IMPORTS,
        _SET_PRESENCE_CS.format(target="Me", namespace="Microsoft.Graph.Me"), _SET_PRESENCE_JS, _SET_PRESENCE_PS,
    ),
    "users.setPresence": Call(
        "POST", "/users/{userId}/presence/setPresence", _USER,
        _SET_PRESENCE_PY.format(target="users.by_user_id(USER_ID)"), _SET_PRESENCE_PY_IMPORTS,
        _SET_PRESENCE_CS.format(target="Users[userId]", namespace="Microsoft.Graph.Users.Item"),
        _SET_PRESENCE_JS, _SET_PRESENCE_PS,
    ),
    "communications.getPresencesByUserId": Call(
        "POST", "/communications/getPresencesByUserId", _USER,
        "    body = GetPresencesByUserIdPostRequestBody(ids=[USER_ID])\n"
        "    result = await client.communications.get_presences_by_user_id.post(body)\n    print(result)",
        ("from msgraph.generated.communications.get_presences_by_user_id.get_presences_by_user_id_post_request_body "
         "import GetPresencesByUserIdPostRequestBody",),
        "var result = await graph.Communications.GetPresencesByUserId.PostAsGetPresencesByUserIdPostResponseAsync(\n"
        "    new Microsoft.Graph.Communications.GetPresencesByUserId.GetPresencesByUserIdPostRequestBody\n"
        "    {\n        Ids = new List<string> { userId },\n    });\n"
        "Console.WriteLine($\"{result?.Value?.Count} presences\");",
        "{ ids: [userId] }", "@{ ids = @($userId) }",
    ),
    "me.getPresence": _get(
        "/me/presence", (), "client.me.presence", "graph.Me.Presence", '$"{result?.Availability}, {result?.Activity}"'
    ),
    "me.updateMailboxSettings": Call(
        "PATCH", "/me/mailboxSettings", (), _REPLIES_PY.format(target="me"), _REPLIES_PY_IMPORTS,
        _REPLIES_CS.format(target="Me"), _REPLIES_JS, _REPLIES_PS, ("using Microsoft.Graph.Models;",),
    ),
    "users.updateMailboxSettings": Call(
        "PATCH", "/users/{userId}/mailboxSettings", _USER, _REPLIES_PY.format(target="users.by_user_id(USER_ID)"),
        _REPLIES_PY_IMPORTS, _REPLIES_CS.format(target="Users[userId]"), _REPLIES_JS, _REPLIES_PS,
        ("using Microsoft.Graph.Models;",),
    ),
    "me.getMailboxSettings": _get(
        "/me/mailboxSettings", (), "client.me.mailbox_settings", "graph.Me.MailboxSettings", "result?.TimeZone"
    ),
    "users.getMailboxSettings": _get(
        "/users/{userId}/mailboxSettings", _USER, "client.users.by_user_id(USER_ID).mailbox_settings",
        "graph.Users[userId].MailboxSettings", "result?.TimeZone",
    ),
    "users.create": Call(
        "POST", "/users", (("userPrincipalName", "{new-user}@{your-domain}"), ("password", "{a-password}")),
        "    user = await client.users.post(\n"
        "        User(\n"
        '            account_enabled=True,\n'
        '            display_name="Test user",\n'
        "            user_principal_name=USER_PRINCIPAL_NAME,\n"
        "            password_profile=PasswordProfile(password=PASSWORD),\n"
        "        )\n"
        "    )\n"
        "    print(user)",
        ("from msgraph.generated.models.password_profile import PasswordProfile",
         "from msgraph.generated.models.user import User"),
        "var user = await graph.Users.PostAsync(new User\n"
        "{\n"
        "    AccountEnabled = true,\n"
        '    DisplayName = "Test user",\n'
        "    UserPrincipalName = userPrincipalName,\n"
        "    PasswordProfile = new PasswordProfile { Password = password },\n"
        "});\n"
        "Console.WriteLine(user?.Id);",
        '{ accountEnabled: true, displayName: "Test user", userPrincipalName, passwordProfile: { password } }',
        '@{ accountEnabled = $true; displayName = "Test user"; userPrincipalName = $userPrincipalName; '
        "passwordProfile = @{ password = $password } }",
        ("using Microsoft.Graph.Models;",),
    ),
    "applications.create": Call(
        "POST", "/applications", (),
        '    app = await client.applications.post(Application(display_name="Test app"))\n    print(app)',
        ("from msgraph.generated.models.application import Application",),
        'var app = await graph.Applications.PostAsync(new Application { DisplayName = "Test app" });\n'
        "Console.WriteLine(app?.AppId);",
        '{ displayName: "Test app" }', '@{ displayName = "Test app" }', ("using Microsoft.Graph.Models;",),
    ),
    "oauth2PermissionGrants.delete": _delete(
        "/oauth2PermissionGrants/{grantId}", (("grantId", "{grant-id}"),),
        "client.oauth2_permission_grants.by_o_auth2_permission_grant_id(GRANT_ID)",
        "graph.Oauth2PermissionGrants[grantId]", "delegated permission grant",
    ),
    "servicePrincipals.deleteAppRoleAssignment": _delete(
        "/servicePrincipals/{servicePrincipalId}/appRoleAssignments/{assignmentId}",
        (("servicePrincipalId", "{service-principal-id}"), ("assignmentId", "{assignment-id}")),
        "client.service_principals.by_service_principal_id(SERVICE_PRINCIPAL_ID)"
        ".app_role_assignments.by_app_role_assignment_id(ASSIGNMENT_ID)",
        "graph.ServicePrincipals[servicePrincipalId].AppRoleAssignments[assignmentId]", "app role assignment",
    ),
    "users.list": _get("/users", (), "client.users", "graph.Users", '$"{result?.Value?.Count} users"'),
    "applications.list": _get(
        "/applications", (), "client.applications", "graph.Applications", '$"{result?.Value?.Count} applications"'
    ),
    "me.get": _get("/me", (), "client.me", "graph.Me", "result?.DisplayName"),
}  # fmt: skip


# ---- Python: azure-identity and msgraph-sdk ----

_PYTHON = """\
# pip install azure-identity msgraph-sdk
# If this server uses its own certificate authority, SSL_CERT_FILE and REQUESTS_CA_BUNDLE must name
# a bundle of the system's trusted roots and <<BASE_URL>>/tls/ca.pem.
<<STDLIB>>

<<THIRD_PARTY>>

BASE_URL = "<<BASE_URL>>"
TENANT_ID = "<<TENANT_ID>>"
<<CONSTANTS>>
<<CREDENTIAL>>
client = GraphServiceClient(credentials=credential, scopes=["<<SCOPE>>"])
client.request_adapter.base_url = f"{BASE_URL}/v1.0"


async def main() -> None:
<<CALL>>


asyncio.run(main())
"""
_PYTHON_DELEGATED = (
    "# Prints where to sign in and a code to enter there, then waits for the sign-in.\n"
    "credential = DeviceCodeCredential(\n"
    "    CLIENT_ID, tenant_id=TENANT_ID, authority=BASE_URL, disable_instance_discovery=True\n)"
)
_PYTHON_APPLICATION = (
    "credential = ClientSecretCredential(\n"
    "    TENANT_ID, CLIENT_ID, CLIENT_SECRET, authority=BASE_URL, disable_instance_discovery=True\n)"
)


def _python_constant(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def _python(kind: PermissionKind, call: Call, base_url: str, scope: str) -> str:
    delegated = kind is PermissionKind.DELEGATED
    stdlib = ["import asyncio", *(i for i in call.python_imports if i.startswith("from datetime"))]
    credential = "DeviceCodeCredential" if delegated else "ClientSecretCredential"
    third_party = sorted(
        {
            f"from azure.identity import {credential}",
            "from msgraph import GraphServiceClient",
            *(_wrap_import(i) for i in call.python_imports if not i.startswith("from datetime")),
        }
    )
    constants = ['CLIENT_ID = "{client-id}"' + ("  # an app that allows public client flows" if delegated else "")]
    if not delegated:
        constants.append('CLIENT_SECRET = "{client-secret}"')
    constants += [f'{_python_constant(name)} = "{text}"' for name, text in call.placeholders]
    return _fill(
        _PYTHON,
        stdlib="\n".join(stdlib),
        third_party="\n".join(third_party),
        base_url=base_url,
        tenant_id="<<TENANT_ID>>",
        constants="\n".join(constants) + "\n",
        credential=_PYTHON_DELEGATED if delegated else _PYTHON_APPLICATION,
        scope=scope,
        call=(f"    # {call.warning}\n" if call.warning else "") + call.python,
    )


def _wrap_import(line: str) -> str:
    """``from a.very.long.module import Name`` over two lines when it is too long for one."""
    if len(line) <= 100:
        return line
    module, name = line.split(" import ")
    return f"{module} import (\n    {name},\n)"


# ---- JavaScript: @azure/identity and @microsoft/microsoft-graph-client ----

_JAVASCRIPT = """\
// npm install @azure/identity @microsoft/microsoft-graph-client
// Node.js 18 or later, saved as sample.mjs. If this server uses its own certificate authority, run it
// with NODE_EXTRA_CA_CERTS naming a copy of <<BASE_URL>>/tls/ca.pem.
import { <<CREDENTIAL_CLASS>> } from "@azure/identity";
import { Client } from "@microsoft/microsoft-graph-client";
import {
  TokenCredentialAuthenticationProvider,
} from "@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials/index.js";

const baseUrl = "<<BASE_URL>>";
const tenantId = "<<TENANT_ID>>";
<<CONSTANTS>>
<<CREDENTIAL>>
const authProvider = new TokenCredentialAuthenticationProvider(credential, {
  scopes: ["<<SCOPE>>"],
});
// The client sends the token only to the https hosts it knows: name this one (its host name, no port).
const client = Client.initWithMiddleware({
  authProvider,
  baseUrl: `${baseUrl}/`,
  customHosts: new Set([new URL(baseUrl).hostname]),
});

<<CALL>>
"""
_JAVASCRIPT_DELEGATED = """\
// Opens a browser to sign in. The app needs the redirect URI http://localhost (mobile and desktop apps).
const credential = new InteractiveBrowserCredential({
  tenantId,
  clientId,
  authorityHost: baseUrl,
  disableInstanceDiscovery: true,
  redirectUri: "http://localhost",
});"""
_JAVASCRIPT_APPLICATION = """\
const credential = new ClientSecretCredential(tenantId, clientId, clientSecret, {
  authorityHost: baseUrl,
  disableInstanceDiscovery: true,
});"""


def _javascript(kind: PermissionKind, call: Call, base_url: str, scope: str) -> str:
    delegated = kind is PermissionKind.DELEGATED
    constants = [
        'const clientId = "{client-id}";' + (" // an app that allows public client flows" if delegated else "")
    ]
    if not delegated:
        constants.append('const clientSecret = "{client-secret}";')
    constants += [f'const {name} = "{text}";' for name, text in call.placeholders]
    path = re.sub(r"{(\w+)}", r"${\1}", call.path)
    target = f"`{path}`" if "${" in path else f'"{path}"'
    method = call.method.lower()
    request = f"client.api({target}).{method}({call.javascript_body or ''})"
    if call.method == "DELETE":
        lines = [f"await {request};", 'console.log("deleted");']
    elif call.method == "POST" and call.path.endswith("/setPresence"):
        lines = [f"await {request};", 'console.log("presence set");']
    else:
        lines = [f"const result = await {request};", "console.log(result);"]
    if call.warning:
        lines.insert(0, f"// {call.warning}")
    return _fill(
        _JAVASCRIPT,
        credential_class="InteractiveBrowserCredential" if delegated else "ClientSecretCredential",
        base_url=base_url,
        tenant_id="<<TENANT_ID>>",
        constants="\n".join(constants) + "\n",
        credential=_JAVASCRIPT_DELEGATED if delegated else _JAVASCRIPT_APPLICATION,
        scope=scope,
        call="\n".join(lines),
    )


# ---- PowerShell: Invoke-RestMethod to the token endpoint, then to Graph ----

_POWERSHELL = """\
# PowerShell 7. If this server uses its own certificate authority, add <<BASE_URL>>/tls/ca.pem
# to the system's trusted root certificates first.
$base = "<<BASE_URL>>"
$tenantId = "<<TENANT_ID>>"
<<CONSTANTS>>
<<TOKEN>>
$headers = @{ Authorization = "Bearer $($token.access_token)" }

<<CALL>>
"""
_POWERSHELL_DELEGATED = """\
# Device code sign-in: open the page the message names, enter the code and sign in.
$device = Invoke-RestMethod -Method Post -Uri "$base/$tenantId/oauth2/v2.0/devicecode" -Body @{
    client_id = $clientId
    scope     = "<<SCOPE>>"
}
Write-Host $device.message
$token = $null
while (-not $token) {
    Start-Sleep -Seconds $device.interval
    try {
        $token = Invoke-RestMethod -Method Post -Uri "$base/$tenantId/oauth2/v2.0/token" -Body @{
            grant_type  = "urn:ietf:params:oauth:grant-type:device_code"
            client_id   = $clientId
            device_code = $device.device_code
        }
    } catch {
        $problem = ($_.ErrorDetails.Message | ConvertFrom-Json).error
        if ($problem -eq "slow_down") { $device.interval += 5 }
        if ($problem -notin "authorization_pending", "slow_down") { throw }
    }
}"""
_POWERSHELL_APPLICATION = """\
# Client credentials: an application permission comes with /.default.
$token = Invoke-RestMethod -Method Post -Uri "$base/$tenantId/oauth2/v2.0/token" -Body @{
    grant_type    = "client_credentials"
    client_id     = $clientId
    client_secret = $clientSecret
    scope         = "<<SCOPE>>"
}"""


def _powershell(kind: PermissionKind, call: Call, base_url: str, scope: str) -> str:
    delegated = kind is PermissionKind.DELEGATED
    constants = ['$clientId = "{client-id}"' + ("  # an app that allows public client flows" if delegated else "")]
    if not delegated:
        constants.append('$clientSecret = "{client-secret}"')
    constants += [f'${name} = "{text}"' for name, text in call.placeholders]
    uri = '"$base/v1.0' + re.sub(r"{(\w+)}", r"$\1", call.path) + '"'
    method = call.method.capitalize()
    lines = [f"# {call.warning}"] if call.warning else []
    if call.powershell_body is not None:
        lines.append(f"$body = {call.powershell_body} | ConvertTo-Json")
        request = f"Invoke-RestMethod -Method {method} -Uri {uri} -Headers $headers"
        request += ' -ContentType "application/json" -Body $body'
    else:
        request = f"Invoke-RestMethod -Method {method} -Uri {uri} -Headers $headers"
    lines.append(request)
    token = _POWERSHELL_DELEGATED if delegated else _POWERSHELL_APPLICATION
    return _fill(
        _POWERSHELL,
        base_url=base_url,
        tenant_id="<<TENANT_ID>>",
        constants="\n".join(constants) + "\n",
        token=_fill(token, scope=scope),
        call="\n".join(lines),
    )


# ---- C#: Azure.Identity and Microsoft.Graph ----

_CSHARP = """\
// dotnet add package Azure.Identity
// dotnet add package Microsoft.Graph
// If this server uses its own certificate authority, add <<BASE_URL>>/tls/ca.pem to the system's
// trusted root certificates first.
using Azure.Identity;
using Microsoft.Graph;
using Microsoft.Graph.Authentication;
<<USINGS>>
var baseUrl = "<<BASE_URL>>";
var tenantId = "<<TENANT_ID>>";
<<CONSTANTS>>
<<CREDENTIAL>>
// GraphServiceClient(credential, scopes, baseUrl) would send the token to Microsoft's Graph hosts only:
// this provider sends it to this server's host.
var authProvider = new AzureIdentityAuthenticationProvider(
    credential,
    allowedHosts: new[] { new Uri(baseUrl).Host },
    scopes: new[] { "<<SCOPE>>" });
var graph = new GraphServiceClient(authProvider, $"{baseUrl}/v1.0");

<<CALL>>
"""
_CSHARP_DELEGATED = """\
// Opens a browser to sign in. The app needs the redirect URI http://localhost (mobile and desktop apps).
var credential = new InteractiveBrowserCredential(new InteractiveBrowserCredentialOptions
{
    AuthorityHost = new Uri(baseUrl),
    DisableInstanceDiscovery = true,
    TenantId = tenantId,
    ClientId = clientId,
    RedirectUri = new Uri("http://localhost"),
});"""
_CSHARP_APPLICATION = """\
var credential = new ClientSecretCredential(tenantId, clientId, clientSecret, new ClientSecretCredentialOptions
{
    AuthorityHost = new Uri(baseUrl),
    DisableInstanceDiscovery = true,
});"""


def _csharp(kind: PermissionKind, call: Call, base_url: str, scope: str) -> str:
    delegated = kind is PermissionKind.DELEGATED
    constants = [
        'var clientId = "{client-id}";' + (" // a public client (mobile and desktop) app" if delegated else "")
    ]
    if not delegated:
        constants.append('var clientSecret = "{client-secret}";')
    constants += [f'var {name} = "{text}";' for name, text in call.placeholders]
    usings = "".join(f"{u}\n" for u in call.csharp_usings)
    return _fill(
        _CSHARP,
        usings=usings,
        base_url=base_url,
        tenant_id="<<TENANT_ID>>",
        constants="\n".join(constants) + "\n",
        credential=_CSHARP_DELEGATED if delegated else _CSHARP_APPLICATION,
        scope=scope,
        call=(f"// {call.warning}\n" if call.warning else "") + call.csharp,
    )


_WRITERS = {"csharp": _csharp, "javascript": _javascript, "powershell": _powershell, "python": _python}


@dataclass(frozen=True, slots=True)
class Sample:
    """One language's sample, with ``<<TENANT_ID>>`` left to fill for whoever reads it."""

    language: str
    label: str
    template: str

    def code(self, tenant_id: str | None) -> str:
        return self.template.replace("<<TENANT_ID>>", tenant_id or TENANT_PLACEHOLDER)


def scope_of(permission: Permission) -> str:
    """What a token request names: the permission itself (delegated), or ``/.default`` (application)."""
    if permission.kind is PermissionKind.DELEGATED:
        return f"{GRAPH_RESOURCE}/{permission.value}"
    return f"{GRAPH_RESOURCE}/.default"


def samples(permission: Permission, call: Call, base_url: str) -> tuple[Sample, ...]:
    """The samples of ``permission`` making ``call`` against the server at ``base_url``."""
    scope = scope_of(permission)
    return tuple(
        Sample(language, label, _WRITERS[language](permission.kind, call, base_url, scope))
        for language, label in LANGUAGES
    )
