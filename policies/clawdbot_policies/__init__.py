"""Clawdbot edge CrossGuard rules; `pack.POLICIES` is what `policies/__main__.py` serves."""
