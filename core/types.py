"""Type aliases the apps share, for annotations only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:  # the auth models cannot be imported before the app registry is ready
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

#: A JSON object as DR sends it or as we send it to DR: parsed, never validated against a schema.
JSONObject: TypeAlias = dict[str, Any]

#: Who made a change, for the transition log: the person (``request.user``), or None for the system.
Actor: TypeAlias = "AbstractBaseUser | AnonymousUser | None"
