"""Signed registry rows: HMAC-SHA256 over what decides what a tool process runs.

``qasdk sync`` signs every row it writes; servers and workers load only rows
whose signature verifies with their key, so a row changed by anything else (a
stray ``UPDATE``, a backup restored from another deployment) is not loaded.
The key lives in the configuration or the environment (``registry.signing_key``,
``QASDK_REGISTRY_SIGNING_KEY``), never in the database; without one, it is kept
in a file created on first use with mode 0600 (``.qasdk/signing.key``), so
``qasdk sync`` and ``qasdk serve`` run from one folder share it with no setup.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import msgspec

from qasdk.config import Config
from qasdk.errors import ConfigurationError
from qasdk.models import MethodConfig, Problem, Source

__all__ = [
    "KEY_MIN",
    "SigningKey",
    "canonical",
    "key_file_path",
    "load_signing_key",
    "new_secret",
    "sign",
    "verify",
    "write_key_file",
]

#: Characters a configured key must have at least.
KEY_MIN = 32
_DOMAIN = b"qasdk registered_methods v1\n"


class SigningKey(msgspec.Struct, frozen=True, kw_only=True):
    """A key and where it came from (``file`` is set when it is read from one)."""

    secret: str
    source: str
    file: str | None = None
    #: (inode, mtime) of ``file`` when read: a rotation replaces the file.
    stamp: tuple[int, int] | None = None

    def __repr__(self) -> str:  # never the secret, in a log line or a traceback
        return f"SigningKey(source={self.source!r})"

    def refreshed(self) -> SigningKey:
        """This key, or the key now in its file if ``qasdk db rotate-signing-key`` replaced it."""
        if self.file is None:
            return self
        try:
            if _stamp(Path(self.file)) == self.stamp:
                return self
            return _read_key_file(Path(self.file))
        except (OSError, ConfigurationError):
            return self  # keep what works; the next start reports the problem


def canonical(config: MethodConfig) -> bytes:
    """The bytes a row's signature covers: every field of the tool, JSON with sorted keys.

    A field at its default (no tags, no permissions) is left out, as ``MethodConfig``
    encodes it: a row signed before such a field existed still verifies, and giving it
    a value (a stray ``UPDATE`` adding or removing permissions) changes the bytes.
    """
    return _DOMAIN + msgspec.json.encode(config, order="sorted")


def sign(key: SigningKey, config: MethodConfig) -> str:
    return hmac.new(key.secret.encode(), canonical(config), hashlib.sha256).hexdigest()


def verify(key: SigningKey, config: MethodConfig, signature: str | None) -> bool:
    return signature is not None and hmac.compare_digest(sign(key, config), signature)


def new_secret() -> str:
    """A fresh key: 32 random bytes, hex (so it can be set in an environment variable)."""
    return secrets.token_hex(32)


def key_file_path(config: Config) -> Path:
    """``registry.key_file``, or ``signing.key`` beside the embedded database's folder."""
    if config.registry.key_file:
        return Path(config.registry.key_file).expanduser()
    return Path(config.database.data_dir).expanduser().parent / "signing.key"


def load_signing_key(config: Config, *, create: bool = True) -> SigningKey:
    """The configured key; else the key file's, created (0600) when ``create`` and missing."""
    configured = config.registry.signing_key
    if configured and configured.strip():  # ``${QASDK_SIGNING_KEY:-}`` unset: the file
        if len(configured.strip()) < KEY_MIN:
            raise ConfigurationError(
                problems=[
                    Problem(
                        source=Source(config.path) if config.path else None,
                        field="registry.signing_key",
                        reason=f"must be at least {KEY_MIN} characters (qasdk db "
                        "rotate-signing-key prints a good one)",
                    )
                ]
            )
        return SigningKey(secret=configured.strip(), source="registry.signing_key")
    path = key_file_path(config)
    if create and not path.exists():
        write_key_file(path, new_secret(), exclusive=True)
    return _read_key_file(path)


def write_key_file(path: Path, secret: str, *, exclusive: bool = False) -> None:
    """Write ``secret`` to ``path`` with mode 0600 (atomically: a temporary file renamed).

    ``exclusive``: create it only if it does not exist (two first runs at once
    agree on one key).
    """
    from qasdk.store.embedded import private_folder

    private_folder(path.parent)
    if exclusive:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        with os.fdopen(fd, "w") as file:
            file.write(secret + "\n")
        return
    temporary = path.with_name(path.name + f".{os.getpid()}.new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n")
    os.replace(temporary, path)


def _stamp(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_ino, status.st_mtime_ns


def _read_key_file(path: Path) -> SigningKey:
    def problem(reason: str) -> ConfigurationError:
        return ConfigurationError(
            problems=[Problem(source=Source(str(path)), field="registry.key_file", reason=reason)]
        )

    try:
        stamp = _stamp(path)
        mode = path.stat().st_mode
        secret = path.read_text().strip()
    except FileNotFoundError:
        raise problem(
            "the registry signing key file does not exist: run qasdk sync here, copy the "
            "file from where it ran, or set QASDK_REGISTRY_SIGNING_KEY"
        ) from None
    except OSError as exc:
        raise problem(f"cannot read the registry signing key: {exc.strerror}") from None
    if mode & 0o077:
        raise problem(
            f"the registry signing key is readable by others (mode {mode & 0o777:04o}): "
            f"chmod 600 {path}"
        )
    if len(secret) < KEY_MIN:
        raise problem(f"holds no key of at least {KEY_MIN} characters")
    return SigningKey(secret=secret, source=str(path), file=str(path), stamp=stamp)
