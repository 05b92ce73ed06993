"""Pulumi ComponentResources of Clawdbot edge. No business rules live here."""
