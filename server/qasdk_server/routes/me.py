"""``GET /api/me``: who the caller is and what its key may do (the console's first call).

Public, so a key with any scope can ask; a key that is not valid is a 401
(recorded like the guard's refusals), and so is no key while keys are in force.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Request, get

from qasdk.keys import SCOPES
from qasdk_server.auth import Authenticator, Refused
from qasdk_server.denials import Denials
from qasdk_server.errors import error_responses

__all__ = ["whoami"]


class KeyInfo(msgspec.Struct):
    id: uuid.UUID
    name: str
    scopes: list[str]


class Me(msgspec.Struct):
    #: Whether requests need a key now.
    keys_required: bool
    #: The key presented; ``None`` on an open server.
    key: KeyInfo | None
    #: What the caller may do: every scope on an open server, else its key's (admin: all).
    scopes: list[str]


@get(
    "/api/me",
    summary="The caller and its scopes",
    responses=error_responses(),
    opt={"scope": "public"},
    tags=("keys",),
)
async def whoami(request: Request[Any, Any, Any]) -> Me:
    """The caller's key and scopes, so a client shows only what it may do."""
    authenticator: Authenticator = request.app.state.authenticator
    try:
        principal = await authenticator.principal(request)
    except Refused as refused:
        denials: Denials | None = getattr(request.app.state, "denials", None)
        if denials is not None:
            await denials.note(refused, request)
        raise
    required = authenticator.mode != "none" and await authenticator.required()
    key = principal.key
    if key is None:
        return Me(keys_required=required, key=None, scopes=[str(s) for s in SCOPES])
    scopes = [str(s) for s in SCOPES if key.allows(s)]
    return Me(
        keys_required=required, key=KeyInfo(key.id, key.name, list(key.scopes)), scopes=scopes
    )
