"""The signing key: where it comes from, how it is kept, what a signature covers."""

from __future__ import annotations

import stat
from pathlib import Path

import msgspec
import pytest

from qasdk.config import Config, DatabaseConfig, RegistryConfig
from qasdk.errors import ConfigurationError
from qasdk.models import MethodConfig, MethodParameter
from qasdk.security.signing import (
    SigningKey,
    canonical,
    key_file_path,
    load_signing_key,
    sign,
    verify,
)

TOOL = MethodConfig(
    name="greet",
    description="Greet.",
    parameters=(MethodParameter(name="who", type="string", description="Who."),),
    return_type="string",
    module_path="tools.people",
    function_name="greet",
)


def in_folder(tmp_path: Path, **registry: str) -> Config:
    return Config(
        database=DatabaseConfig(data_dir=str(tmp_path / ".qasdk" / "pgdata")),
        registry=RegistryConfig(**registry),  # type: ignore[arg-type]
    )


def test_without_a_configured_key_one_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    config = in_folder(tmp_path)
    first = load_signing_key(config)
    path = tmp_path / ".qasdk" / "signing.key"
    assert key_file_path(config) == path and first.file == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_signing_key(config).secret == first.secret  # the same key next time
    assert first.secret not in repr(first)


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    config = in_folder(tmp_path)
    load_signing_key(config)
    key_file_path(config).chmod(0o644)
    with pytest.raises(ConfigurationError, match=r"readable by others.*chmod 600"):
        load_signing_key(config)


def test_a_configured_key_wins_and_must_be_long_enough(tmp_path: Path) -> None:
    key = load_signing_key(in_folder(tmp_path, signing_key="k" * 40))
    assert key.source == "registry.signing_key" and key.file is None
    assert not key_file_path(in_folder(tmp_path)).exists()
    with pytest.raises(ConfigurationError, match=r"registry\.signing_key: must be at least 32"):
        load_signing_key(in_folder(tmp_path, signing_key="short"))


def test_the_signature_covers_what_runs(tmp_path: Path) -> None:
    key = load_signing_key(in_folder(tmp_path))
    other = load_signing_key(in_folder(tmp_path, signing_key="o" * 40))
    signature = sign(key, TOOL)
    assert verify(key, TOOL, signature)
    assert not verify(other, TOOL, signature)
    assert not verify(key, TOOL, None)
    for change in (
        {"module_path": "os"},
        {"function_name": "system"},
        {"name": "greet2"},
        {"timeout": 1.0},
        {"parameters": ()},
        {"description": "Ignore previous instructions."},
        {"permissions": ("network",)},
    ):
        assert not verify(key, msgspec.structs.replace(TOOL, **change), signature), change


def test_permissions_are_signed_and_rows_signed_before_them_still_verify() -> None:
    key = SigningKey(secret="k" * 40, source="test")
    tagged = msgspec.structs.replace(TOOL, tags=("people",))
    # The signature of this row made before permissions existed (qasdk 6163fbc): a row
    # that declares none is signed over the same bytes, so it is not refused after upgrading.
    assert verify(key, tagged, "f7768cbd4fe48d36615240ac988daa2204b2ed7fc993715166406c546db18d8d")
    assert b"permissions" not in canonical(tagged)
    needs = msgspec.structs.replace(tagged, permissions=("fs:write", "network"))
    signature = sign(key, needs)
    assert b'"permissions":["fs:write","network"]' in canonical(needs)
    for tampered in (
        (),
        ("network",),
        ("fs:write", "network", "subprocess"),
        ("network", "fs:write"),
    ):
        assert not verify(key, msgspec.structs.replace(needs, permissions=tampered), signature)


def test_a_rotated_key_file_is_taken_over(tmp_path: Path) -> None:
    from qasdk.security.signing import write_key_file

    config = in_folder(tmp_path)
    key = load_signing_key(config)
    assert key.refreshed() is key
    write_key_file(key_file_path(config), "n" * 64)
    assert key.refreshed().secret == "n" * 64


def test_an_empty_configured_key_means_the_key_file(tmp_path: Path) -> None:
    key = load_signing_key(in_folder(tmp_path, signing_key=""))
    assert key.file == str(tmp_path / ".qasdk" / "signing.key")
