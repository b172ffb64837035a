"""HTTP authentication as ES security answers it: Basic and ApiKey, with ES's 401 bodies."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
from dataclasses import dataclass
from typing import Any

from .errors import ESError

WWW_AUTHENTICATE = ['Basic realm="security" charset="UTF-8"', "ApiKey"]


@dataclass(frozen=True)
class AuthConfig:
    user: str | None = None
    password: str | None = None
    api_key: str | None = None

    @property
    def enabled(self) -> bool:
        return self.user is not None or self.api_key is not None

    def _api_key_forms(self) -> set[str]:
        assert self.api_key is not None
        forms = {self.api_key}
        if ":" in self.api_key:
            forms.add(base64.b64encode(self.api_key.encode()).decode())
        else:
            with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                forms.add(base64.b64decode(self.api_key, validate=True).decode())
        return forms

    def check(self, header: str | None, uri: str) -> None:
        """Raise the 401 ESError unless ``header`` carries valid credentials."""
        if not self.enabled:
            return
        if not header:
            raise _unauthorized(f"missing authentication credentials for REST request [{uri}]")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "basic" and self.user is not None:
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise _unauthorized(f"missing authentication credentials for REST request [{uri}]") from None
            if hmac.compare_digest(user, self.user) and hmac.compare_digest(password, self.password or ""):
                return
            raise _unauthorized(f"unable to authenticate user [{user}] for REST request [{uri}]")
        if scheme.lower() == "apikey" and self.api_key is not None:
            if any(hmac.compare_digest(value, form) for form in self._api_key_forms()):
                return
            raise _unauthorized("unable to authenticate with provided credentials and anonymous access is not "
                                "allowed for this request",
                                additional_unsuccessful_credentials="API key: invalid ApiKey value")
        raise _unauthorized(f"missing authentication credentials for REST request [{uri}]")


def _unauthorized(reason: str, **extra: Any) -> ESError:
    return ESError(401, "security_exception", reason, **extra, header={"WWW-Authenticate": WWW_AUTHENTICATE})
