"""Clawdbot edge control plane: the VPS side of a fleet of per-tenant Cloudflare edges."""
