"""Field encryption for secrets stored in the database (provider credentials).

AES-256-GCM with rotatable keys from ``settings.FIELD_ENCRYPTION_KEYS``: a list of keys,
newest first, each 32 random bytes in url-safe base64. Generate one with::

    python -c "import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())"

Tokens look like ``v1:<key-id>:<b64(nonce + ciphertext + tag)>``. The key id is a short
fingerprint of the key, so decryption picks the right key and rotation works by putting a
new key in front: old tokens still decrypt, new ones use the new key, and
``needs_reencrypt`` tells which rows still have to move before the old key is removed.

Every token is bound to its row by the AAD (``routing.Credential:<pk>``): a ciphertext
copied into another row fails authentication instead of silently decrypting.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# django.core.signals, not django.test.signals: settings.py imports this module to validate
# the keys at start-up, and the test module pulls in the database layer.
from django.core.signals import setting_changed

VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12  # the GCM standard nonce; random nonces are safe far beyond our row counts
KEY_ID_HEX = 8
GENERATE_HINT = (
    'generate one with: python -c "import base64,os;'
    'print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
)


class DecryptionError(Exception):
    """A token that cannot be decrypted: malformed, unknown key, tampered or another row's."""


@dataclass(frozen=True)
class Key:
    id: str
    # repr=False: a key must never end up in a log line or a traceback's locals dump.
    material: bytes = field(repr=False)


def _decode_key(raw: str) -> bytes:
    text = raw.strip()
    # Accept keys with or without "=" padding (secrets.token_urlsafe omits it).
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not url-safe base64") from exc


def key_id(material: bytes) -> str:
    return hashlib.sha256(material).hexdigest()[:KEY_ID_HEX]


def validate_keys(raw: list[str]) -> None:
    """Fail loudly at start-up on bad key material; names the entry by position only."""
    parse_keys(raw)


def parse_keys(raw: list[str] | tuple[str, ...] | str | None) -> tuple[Key, ...]:
    if isinstance(raw, str):  # a bare string would otherwise be iterated per character
        raw = [raw]
    if not raw:
        raise ImproperlyConfigured(
            f"FIELD_ENCRYPTION_KEYS is empty: set at least one key ({GENERATE_HINT})"
        )
    parsed: list[Key] = []
    for position, entry in enumerate(raw, start=1):
        where = f"FIELD_ENCRYPTION_KEYS entry #{position} (of {len(raw)}, newest first)"
        if not isinstance(entry, str) or not entry.strip():
            raise ImproperlyConfigured(f"{where} is empty")
        try:
            material = _decode_key(entry)
        except ValueError:
            raise ImproperlyConfigured(
                f"{where} is not url-safe base64; {GENERATE_HINT}"
            ) from None  # from None: the chained error could echo the key
        if len(material) != KEY_BYTES:
            raise ImproperlyConfigured(
                f"{where} decodes to {len(material)} bytes, expected {KEY_BYTES}; {GENERATE_HINT}"
            )
        key = Key(id=key_id(material), material=material)
        for earlier_position, earlier in enumerate(parsed, start=1):
            if earlier.id == key.id:
                raise ImproperlyConfigured(
                    f"{where} repeats entry #{earlier_position} (key id {key.id})"
                )
        parsed.append(key)
    return tuple(parsed)


_keys: tuple[Key, ...] | None = None


def keys() -> tuple[Key, ...]:
    """The configured keys, newest first; parsed once per process (and per settings change)."""
    global _keys
    if _keys is None:
        raw = getattr(settings, "FIELD_ENCRYPTION_KEYS", None)
        if raw is None:
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS is not configured; {GENERATE_HINT}")
        _keys = parse_keys(raw)
    return _keys


def _forget_keys(*, setting: str, **kwargs: Any) -> None:
    global _keys
    if setting == "FIELD_ENCRYPTION_KEYS":
        _keys = None


setting_changed.connect(_forget_keys, dispatch_uid="aura.crypto.forget_keys")


def encrypt(plaintext: str, *, aad: str) -> str:
    key = keys()[0]
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key.material).encrypt(nonce, plaintext.encode("utf-8"), aad.encode("utf-8"))
    body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
    return f"{VERSION}:{key.id}:{body}"


def _split(token: str) -> tuple[str, bytes]:
    parts = token.split(":") if isinstance(token, str) else []
    if len(parts) != 3 or parts[0] != VERSION:
        raise DecryptionError(
            f"not a {VERSION} encrypted token (expected {VERSION}:<key-id>:<data>)"
        )
    try:
        blob = base64.urlsafe_b64decode(parts[2].encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise DecryptionError("encrypted token is corrupted (its data is not base64)") from None
    if len(blob) < NONCE_BYTES + 16:  # nonce + GCM tag at the very least
        raise DecryptionError("encrypted token is corrupted (too short)")
    return parts[1], blob


def decrypt(token: str, *, aad: str) -> str:
    kid, blob = _split(token)
    key = next((k for k in keys() if k.id == kid), None)
    if key is None:
        raise DecryptionError(
            f"encrypted with key id {kid}, which is not in FIELD_ENCRYPTION_KEYS "
            f"(known: {', '.join(k.id for k in keys())}); was it removed before "
            "every row was re-encrypted?"
        )
    try:
        plain = AESGCM(key.material).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad.encode())
    except InvalidTag:
        # GCM cannot tell these apart: both fail the same authentication tag.
        raise DecryptionError(
            f"encrypted token failed authentication for {aad}: it was tampered with, "
            "or it was copied from another row"
        ) from None
    return plain.decode("utf-8")


def needs_reencrypt(token: str) -> bool:
    """True when the token is not under the newest key (including malformed tokens)."""
    try:
        kid, _ = _split(token)
    except DecryptionError:
        return True
    return kid != keys()[0].id
