"""Fixtures of the adversarial suite: every case runs in both modes unless it applies to one."""

from __future__ import annotations

import binascii
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives import hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import clientstate._core.token as token_module
from clientstate._core.token import Mode
from tests.security.support import CryptoSpy


@pytest.fixture(params=[Mode.AUTHENTICATED, Mode.ENCRYPTED], ids=["authenticated", "encrypted"])
def mode(request: pytest.FixtureRequest) -> Mode:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def crypto_spy(monkeypatch: pytest.MonkeyPatch) -> CryptoSpy:
    """Wrap the decoding and cryptography clientstate._core.token uses; see :class:`CryptoSpy`."""
    spy = CryptoSpy()
    # clientstate._core.token uses these through its module globals ``hmac`` and ``AESGCM``.
    assert token_module.__dict__["hmac"] is hmac
    assert token_module.__dict__["AESGCM"] is AESGCM
    real_hmac = hmac.HMAC
    real_aesgcm = AESGCM
    real_decode: Callable[[str], bytes | None] = token_module.__dict__["b64url_decode"]
    real_a2b = binascii.a2b_base64
    real_salt_key = token_module._salt_key

    class SpyHMAC:
        def __init__(self, key: bytes, algorithm: Any, inner: Any = None) -> None:
            self._inner = real_hmac(key, algorithm) if inner is None else inner

        def copy(self) -> SpyHMAC:
            spy.hit("HMAC.copy")
            return SpyHMAC(b"", None, self._inner.copy())

        def update(self, data: bytes) -> None:
            spy.hit("HMAC.update")
            self._inner.update(data)

        def verify(self, signature: bytes) -> None:
            spy.hit("HMAC.verify")
            spy.verified.append(bytes(signature))
            self._inner.verify(signature)

        def finalize(self) -> bytes:
            spy.hit("HMAC.finalize")
            return self._inner.finalize()

    class SpyAESGCM:
        def __init__(self, key: bytes) -> None:
            spy.hit("AESGCM()")
            self._inner = real_aesgcm(key)

        def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
            spy.hit("AESGCM.encrypt")
            return self._inner.encrypt(nonce, data, associated_data)

        def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
            spy.hit("AESGCM.decrypt")
            return self._inner.decrypt(nonce, data, associated_data)

    def decode(text: str) -> bytes | None:
        spy.hit("b64url_decode")
        return real_decode(text)

    def a2b(data: Any, *args: Any, **kwargs: Any) -> bytes:
        spy.hit("binascii.a2b_base64")
        return real_a2b(data, *args, **kwargs)

    def salt_key(aead_key: bytes, salt: bytes) -> bytes:
        spy.hit("HKDF salt key")
        return real_salt_key(aead_key, salt)

    monkeypatch.setattr(token_module, "hmac", SimpleNamespace(HMAC=SpyHMAC))
    monkeypatch.setattr(token_module, "AESGCM", SpyAESGCM)
    monkeypatch.setattr(token_module, "b64url_decode", decode)
    monkeypatch.setattr(token_module, "_salt_key", salt_key)
    monkeypatch.setattr(binascii, "a2b_base64", a2b)
    return spy
