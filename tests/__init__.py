"""Test suite (a package, so tests/<area>/ never shadows a real package such as dialer)."""
