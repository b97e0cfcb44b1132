"""Scan: ``@tool`` functions → tool entries, read with griffe and never imported.

One module per concern: ``scanner`` (files, two passes), ``extract`` (one
function), ``options`` (``@tool(...)``), ``docstrings``, ``annotations``
(hints → schema), ``enums``, ``names`` (import resolution), ``modules``
(paths → module names), ``expressions`` (source text → literals).
"""

from qasdk.registration.scan.modules import module_name_for, package_module_name
from qasdk.registration.scan.scanner import Scanner, ScanResult, scan_source

__all__ = ["ScanResult", "Scanner", "module_name_for", "package_module_name", "scan_source"]
