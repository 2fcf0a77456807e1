"""The permissions explorer's index entries: one per permission value, with what it allows and exposes.

Built by ``web.explorer`` and exported by ``web.permission_exports``.
"""

from __future__ import annotations

from dataclasses import dataclass

from presenced.auth.allowances import Allowance
from presenced.auth.permissions import Permission
from presenced.web import samples as code_samples
from presenced.web.resource_properties import Property

#: How the explorer marks a method (or a property) of this server's own: presenced's extensions, which
#: a program written for Microsoft Graph never meets there.
EXTENSION_LABEL = "Extension — not in Microsoft Graph"


@dataclass(frozen=True, slots=True)
class Method:
    """An endpoint that the delegated or the application variant of a permission allows."""

    method: str
    #: The full paths: one per Graph version, or the one path of an extension.
    paths: tuple[str, ...]
    versioned: bool
    summary: str
    operation_id: str
    delegated: Allowance | None
    application: Allowance | None

    @property
    def extension(self) -> bool:
        """An extension of this server's, not in Microsoft Graph: a path without a version (``/_ext/…``,
        ``/_stream/…``), as the API's route table serves only Graph's endpoints under ``/v1.0`` and ``/beta``."""
        return not self.versioned


@dataclass(frozen=True, slots=True)
class Variant:
    """The delegated or the application permission of one value, with its code samples."""

    permission: Permission
    #: The operation id of the endpoint the samples call (None: no sample, e.g. an OpenID Connect scope).
    sample_call: str | None
    samples: tuple[code_samples.Sample, ...]


@dataclass(frozen=True, slots=True)
class Entry:
    """One permission value: its variants, what they allow and expose, and its exports."""

    value: str
    delegated: Variant | None
    application: Variant | None
    methods: tuple[Method, ...]
    properties: tuple[Property, ...]
    #: What the list's search matches: the value and the display names.
    search: str
    json: bytes
    csv: str
    #: (resource, name) of the properties that only extension methods answer with.
    extension_properties: frozenset[tuple[str, str]] = frozenset()

    @property
    def variants(self) -> tuple[Variant, ...]:
        return tuple(v for v in (self.delegated, self.application) if v is not None)

    @property
    def openid(self) -> bool:
        return any(v.permission.openid for v in self.variants)

    @property
    def extensions(self) -> tuple[Method, ...]:
        """The methods it allows that are extensions of this server's, not in Microsoft Graph."""
        return tuple(m for m in self.methods if m.extension)

    def extension_property(self, prop: Property) -> bool:
        return (prop.resource, prop.name) in self.extension_properties
