"""What keeps the registry data, not code: allowed import roots and signed rows.

A row of ``registered_methods`` names a module and a function that a tool
process imports and calls. Two guards stand between that table and code
execution: :mod:`~qasdk.security.roots` (only code under the module root or in
an allowed package runs) and :mod:`~qasdk.security.signing` (only rows written
by ``qasdk sync`` with this deployment's key are loaded).
"""

from qasdk.security.roots import ModuleRoots
from qasdk.security.signing import SigningKey, load_signing_key, sign, verify

__all__ = ["ModuleRoots", "SigningKey", "load_signing_key", "sign", "verify"]
