"""Domain errors. Each one's message names what is at fault (stack, tenant, file, field)."""

from __future__ import annotations


class EdgeError(Exception):
    """Base class: the CLI prints these as `Error: <message>` and exits 1."""


class ConfigError(EdgeError):
    """A stack's config is invalid; the message is one line: stack, key path, reason."""


class UnknownTenantError(ConfigError):
    """A tenant that is not registered, a malformed tenant id, or no tenants at all.

    The caller named something that is not there: the doors report it as a usage error (exit 2),
    naming the tenant and where they looked (the stack file, the registry).
    """


class CryptoError(EdgeError):
    """Decryption or verification failed (never carries key or plaintext material)."""


class SetupError(EdgeError):
    """The VPS is not set up to run stacks (missing Pulumi CLI, unsafe file modes, bad directories)."""


class PermissionsError(SetupError):
    """A file holding secrets, or a private directory, fails the owner-only rule (config/private_files.py)."""


class PulumiCliMissingError(SetupError):
    """The Pulumi CLI is not installed; the message says how to install the pinned version."""


class StackError(EdgeError):
    """An operation on one tenant stack failed; the message names the stack and what to do."""


class TransientStackError(StackError):
    """A stack operation failed in a way that retrying later may fix (busy stack, engine RPC hiccup)."""


class StackBusyError(TransientStackError):
    """The stack is locked by another update (transient: retry later, or recover a stale lock)."""


class StackMissingError(StackError):
    """The stack does not exist in the state backend."""


class FleetLockError(EdgeError):
    """Another fleet run holds the fleet lease (or a dead one left it behind)."""


class PassphraseError(CryptoError):
    """The state passphrase does not unlock a stack file's `encryptionsalt`."""


class MigrationError(EdgeError):
    """The database's applied migrations do not match the migration files."""
