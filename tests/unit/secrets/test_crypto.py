"""The vault's primitives: scrypt-derived keys, AES-256-GCM with bound context."""

from __future__ import annotations

import pytest

from ozwald_agent.secrets.crypto import (
    DecryptionError,
    KdfParams,
    PassphraseKeyWrapper,
    derive_key,
    new_data_key,
    seal,
    unseal,
)

CHEAP = 2**10


def test_the_same_passphrase_and_salt_give_the_same_key_and_salts_are_random() -> None:
    params = KdfParams.fresh(CHEAP)
    assert derive_key(b"pass", params) == derive_key(b"pass", params)
    other = KdfParams.fresh(CHEAP)
    assert other.salt != params.salt and len(params.salt) == 16
    assert derive_key(b"pass", other) != derive_key(b"pass", params)
    assert KdfParams.from_json(params.to_json()) == params


def test_an_empty_passphrase_is_refused() -> None:
    with pytest.raises(ValueError):
        derive_key(b"", KdfParams.fresh(CHEAP))


def test_seal_round_trips_and_fails_on_tampering_or_another_context() -> None:
    key = new_data_key()
    sealed = seal(key, b"s3cret", b"realm\0locker\0name\x001")
    assert b"s3cret" not in sealed
    assert unseal(key, sealed, b"realm\0locker\0name\x001") == b"s3cret"
    with pytest.raises(DecryptionError):
        unseal(key, sealed, b"realm\0locker\0other\x001")
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(DecryptionError):
        unseal(key, bytes(tampered), b"realm\0locker\0name\x001")
    with pytest.raises(DecryptionError):
        unseal(new_data_key(), sealed, b"realm\0locker\0name\x001")
    assert seal(key, b"x", b"c") != seal(key, b"x", b"c")  # random nonces


def test_a_wrapper_from_another_passphrase_cannot_unwrap_or_verify() -> None:
    params = KdfParams.fresh(CHEAP)
    right = PassphraseKeyWrapper(derive_key(b"right", params))
    wrong = PassphraseKeyWrapper(derive_key(b"wrong", params))
    data_key = new_data_key()
    wrapped = right.wrap(data_key, b"ctx")
    assert right.unwrap(wrapped, b"ctx") == data_key
    with pytest.raises(DecryptionError):
        wrong.unwrap(wrapped, b"ctx")
    with pytest.raises(DecryptionError):
        right.unwrap(wrapped, b"another locker")
    with pytest.raises(DecryptionError):
        wrong.verify(right.check_token())
