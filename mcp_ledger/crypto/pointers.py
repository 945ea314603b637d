"""Signed client-side pointers to server-side blobs (state model 2).

A pointer is a resource_link URI `ledger://blobs/{id}?…&sig=…` carrying its expiry, the
session it was issued in, a keyed digest of the subject (the subject itself stays out of
URIs and logs), an optional one-time nonce, and an HMAC-SHA256 over all of it. Reading a
pointer checks, in order: shape, signature, expiry, subject, session; one-time use is
tracked by the caller (a replay guard in Redis or memory), not here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

POINTER_PREFIX = "ledger://blobs/"


class PointerError(ValueError):
    """A pointer that may not be read; `code` is one of malformed, tampered, expired,
    foreign_subject, foreign_session, replayed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Pointer:
    blob_id: str
    tenant: str
    session_id: str
    subject_tag: str
    expires_at: int
    nonce: str | None

    @property
    def one_time(self) -> bool:
        return self.nonce is not None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class PointerSigner:
    """Issues and checks pointers with one HMAC key shared by API replicas and workers."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def subject_tag(self, tenant: str, subject: str) -> str:
        """A keyed digest naming the subject without revealing it."""
        return _b64(
            hmac.new(self._key, f"subject\0{tenant}\0{subject}".encode(), hashlib.sha256).digest()[:12]
        )

    def issue(
        self, *, blob_id: str, tenant: str, subject: str, session_id: str, expires_at: float, one_time: bool
    ) -> str:
        """The signed pointer URI."""
        pointer = Pointer(
            blob_id=blob_id,
            tenant=tenant,
            session_id=session_id,
            subject_tag=self.subject_tag(tenant, subject),
            expires_at=int(expires_at),
            nonce=secrets.token_urlsafe(12) if one_time else None,
        )
        query = {
            "t": pointer.tenant,
            "s": pointer.session_id,
            "u": pointer.subject_tag,
            "e": pointer.expires_at,
        }
        if pointer.nonce is not None:
            query["n"] = pointer.nonce
        query["sig"] = self._signature(pointer)
        return f"{POINTER_PREFIX}{blob_id}?{urlencode(query)}"

    def check(self, uri: str, *, tenant: str, subject: str, session_id: str | None, now: float) -> Pointer:
        """The pointer if this caller may read it now.

        Raises:
            PointerError: malformed, tampered, expired, or issued to another subject or session.
        """
        pointer, signature = _parse(uri)
        if not hmac.compare_digest(signature, self._signature(pointer)):
            raise PointerError("tampered", "the pointer's signature does not match: it was altered")
        if now >= pointer.expires_at:
            raise PointerError("expired", "the pointer has expired; ask the tool for a new one")
        if pointer.tenant != tenant or not hmac.compare_digest(
            pointer.subject_tag, self.subject_tag(tenant, subject)
        ):
            raise PointerError("foreign_subject", "the pointer was issued to someone else")
        if session_id != pointer.session_id:
            raise PointerError("foreign_session", "the pointer belongs to another session")
        return pointer

    def _signature(self, pointer: Pointer) -> str:
        message = "\0".join(
            [
                "pointer/v1",
                pointer.blob_id,
                pointer.tenant,
                pointer.session_id,
                pointer.subject_tag,
                str(pointer.expires_at),
                pointer.nonce or "",
            ]
        )
        return _b64(hmac.new(self._key, message.encode(), hashlib.sha256).digest())


def _parse(uri: str) -> tuple[Pointer, str]:
    if not uri.startswith(POINTER_PREFIX):
        raise PointerError("malformed", "not a blob pointer")
    parts = urlsplit(uri)
    blob_id = uri[len(POINTER_PREFIX) :].split("?", 1)[0]
    query = parse_qs(parts.query, keep_blank_values=False, strict_parsing=False)
    try:
        values = {key: query[key][0] for key in ("t", "s", "u", "e", "sig")}
        nonce = query["n"][0] if "n" in query else None
        if any(len(v) != 1 for v in query.values()):
            raise ValueError("repeated parameter")
        pointer = Pointer(blob_id, values["t"], values["s"], values["u"], int(values["e"]), nonce)
    except (KeyError, ValueError) as error:
        raise PointerError("malformed", "the pointer is incomplete or malformed") from error
    if not blob_id:
        raise PointerError("malformed", "the pointer names no blob")
    return pointer, values["sig"]
