"""aura.crypto: AES-256-GCM field encryption with rotatable keys, bound to a row."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from aura import crypto

ROW = "routing.Credential:1"


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


@pytest.fixture
def old_key(settings: Any) -> str:
    key = new_key()
    settings.FIELD_ENCRYPTION_KEYS = [key]
    return key


def test_it_round_trips_unicode_text(old_key: str) -> None:
    token = crypto.encrypt("sk-héllo-🔑", aad=ROW)
    assert crypto.decrypt(token, aad=ROW) == "sk-héllo-🔑"


def test_the_token_names_its_version_and_key_and_hides_the_plaintext(old_key: str) -> None:
    token = crypto.encrypt("sk-plain-secret", aad=ROW)
    version, kid, _body = token.split(":")
    assert (version, kid) == ("v1", crypto.keys()[0].id)
    assert len(kid) == 8
    assert "sk-plain-secret" not in token
    # A fresh nonce per call: the same plaintext never encrypts to the same token.
    assert crypto.encrypt("sk-plain-secret", aad=ROW) != token


def test_a_ciphertext_copied_to_another_row_does_not_decrypt(old_key: str) -> None:
    token = crypto.encrypt("sk-secret", aad="routing.Credential:1")
    with pytest.raises(crypto.DecryptionError, match=r"routing\.Credential:2.*another row"):
        crypto.decrypt(token, aad="routing.Credential:2")


def test_a_tampered_ciphertext_does_not_decrypt(old_key: str) -> None:
    version, kid, body = crypto.encrypt("sk-secret", aad=ROW).split(":")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-1] ^= 1
    tampered = f"{version}:{kid}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(crypto.DecryptionError, match="tampered"):
        crypto.decrypt(tampered, aad=ROW)


@pytest.mark.parametrize("token", ["", "plaintext", "v2:abcd1234:AAAA", "v1:abcd1234:!!!"])
def test_a_malformed_token_is_a_decryption_error(old_key: str, token: str) -> None:
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token, aad=ROW)


def test_rotation_keeps_old_tokens_readable_until_they_are_moved(
    old_key: str, settings: Any
) -> None:
    old_token = crypto.encrypt("sk-secret", aad=ROW)
    assert not crypto.needs_reencrypt(old_token)

    settings.FIELD_ENCRYPTION_KEYS = [new_key(), old_key]  # the new key goes in front

    assert crypto.decrypt(old_token, aad=ROW) == "sk-secret"
    assert crypto.needs_reencrypt(old_token)
    new_token = crypto.encrypt("sk-secret", aad=ROW)
    assert not crypto.needs_reencrypt(new_token)
    assert new_token.split(":")[1] == crypto.keys()[0].id != old_token.split(":")[1]


def test_an_unknown_key_id_is_named_in_the_error(old_key: str, settings: Any) -> None:
    token = crypto.encrypt("sk-secret", aad=ROW)
    kid = token.split(":")[1]
    settings.FIELD_ENCRYPTION_KEYS = [new_key()]  # the old key was removed too early
    with pytest.raises(crypto.DecryptionError, match=f"key id {kid}, which is not in"):
        crypto.decrypt(token, aad=ROW)


def test_keys_are_reloaded_when_the_setting_changes(settings: Any) -> None:
    first, second = new_key(), new_key()
    settings.FIELD_ENCRYPTION_KEYS = [first]
    first_id = crypto.keys()[0].id
    settings.FIELD_ENCRYPTION_KEYS = [second]
    assert crypto.keys()[0].id != first_id


def test_key_material_never_appears_in_a_repr(old_key: str) -> None:
    assert old_key not in repr(crypto.keys())
    assert repr(base64.urlsafe_b64decode(old_key)) not in repr(crypto.keys())


def test_keys_without_base64_padding_are_accepted() -> None:
    key = new_key().rstrip("=")  # what secrets.token_urlsafe(32) produces
    crypto.validate_keys([key])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "is empty"),
        (["GOOD", "not base64 at all!"], "entry #2 .* not url-safe base64"),
        (["GOOD", base64.urlsafe_b64encode(os.urandom(16)).decode()], "entry #2 .* 16 bytes"),
        (["GOOD", ""], "entry #2 .* is empty"),
        (["GOOD", "GOOD"], "entry #2 .* repeats entry #1"),
    ],
)
def test_bad_key_material_fails_loudly_naming_the_position(raw: list[str], message: str) -> None:
    good = new_key()
    raw = [good if item == "GOOD" else item for item in raw]
    with pytest.raises(ImproperlyConfigured, match=message) as info:
        crypto.validate_keys(raw)
    for item in raw:
        if item:
            assert item not in str(info.value)


def test_a_missing_setting_explains_how_to_generate_a_key(settings: Any) -> None:
    del settings.FIELD_ENCRYPTION_KEYS
    with pytest.raises(ImproperlyConfigured, match="urandom"):
        crypto.keys()
