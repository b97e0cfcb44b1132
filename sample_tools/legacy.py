"""A plain module without ``@tool``: its function is declared in ``methods.yaml``."""

_CODES = {"china": "CN", "france": "FR", "germany": "DE", "japan": "JP", "united states": "US"}


def country_code(country):
    return _CODES.get(country.strip().lower(), "unknown")
