"""Which registry rows a process loads: signed with its key, code from its roots."""

from __future__ import annotations

from qasdk.models import MethodMetadata
from qasdk.security.roots import ModuleRoots
from qasdk.security.signing import SigningKey, verify

__all__ = ["RowGuard"]

_RESYNC = "run qasdk sync (with this deployment's signing key) to write it again"


class RowGuard:
    """Says why a row must not be loaded; the key is re-read when its file is replaced."""

    def __init__(self, key: SigningKey, roots: ModuleRoots) -> None:
        self.key = key
        self.roots = roots

    def refresh(self) -> None:
        """Take over a key file replaced by ``qasdk db rotate-signing-key``."""
        self.key = self.key.refreshed()

    def refusal(self, method: MethodMetadata, signature: str | None) -> str | None:
        """Why ``method`` is refused (every reason), or ``None`` when it may be loaded."""
        reasons = []
        if signature is None:
            reasons.append(f"its row is not signed (written outside qasdk sync); {_RESYNC}")
        elif not verify(self.key, method.to_config(), signature):
            reasons.append(
                "its row's signature does not match (row changed outside qasdk sync, or "
                f"signed with another key than {self.key.source}); {_RESYNC}"
            )
        outside = (
            self.roots.refusal(method.module_path, present=False)
            if method.type == "python"
            else None
        )
        if outside is not None:
            reasons.append(f"module_path: {outside}")
        return "; ".join(reasons) or None
