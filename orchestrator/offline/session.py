"""Run the real Pulumi program without the CLI, under the provider-faithful mocks.

`plan`, the policy runner and the tests all go through `run_offline`, so what they check is what
`pulumi up` would register. Secret values are never needed: unless the caller passes values, each
secret is a placeholder (and still travels as a Pulumi secret).
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

from orchestrator.config.key_paths import map_secure, secure_key_paths
from orchestrator.config.stack_yaml import Segment
from orchestrator.config.tenant_config import (
    PLATFORM_KEY,
    SECRETS_KEY,
    TENANT_KEY,
    project_name,
    read_stack_config,
    tenant_stacks,
)
from orchestrator.core.errors import ConfigError, EdgeError
from orchestrator.core.names import PLATFORM_STACK, platform_reference
from orchestrator.offline.cloudflare_mock import SECRET_SIG, CloudflareMocks, FakeAccount
from orchestrator.offline.errors import ProviderRejected
from orchestrator.program import run_program

PLACEHOLDER = "offline-placeholder-not-a-secret"


class _UnknownValue:
    """A value the engine would not know until apply (preview only)."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _UnknownValue()


@dataclass(frozen=True)
class RegisteredResource:
    type: str
    name: str
    urn: str
    id: str | None
    """Provider id the mock answered (None for components)."""
    custom: bool
    parent_urn: str | None
    inputs: dict[str, Any]
    """Engine (camelCase) names, secrets unwrapped, unknowns as UNKNOWN."""
    secret_paths: tuple[str, ...]
    """Dotted paths of inputs the engine holds as secrets (`bindings` when any binding is)."""
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    additional_secret_outputs: tuple[str, ...]
    dependencies: tuple[str, ...]
    """URNs this resource depends on (explicit depends_on and through its inputs)."""


@dataclass
class OfflineRun:
    stack: str
    resources: list[RegisteredResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)

    def of_type(self, type_: str) -> list[RegisteredResource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> RegisteredResource:
        return next(r for r in self.resources if r.name == name)


def _plain(value: Any, path: str, secret_paths: list[str]) -> Any:
    if isinstance(value, pulumi.output.Unknown):
        return UNKNOWN
    if isinstance(value, dict):
        if value.get(SECRET_SIG) is not None and "value" in value:
            secret_paths.append(path)
            return _plain(value["value"], path, [])
        return {k: _plain(v, f"{path}.{k}" if path else k, secret_paths) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, f"{path}[{i}]", secret_paths) for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        # The wire has only doubles; the program said 32, not 32.0.
        return int(value)
    return value


class RecordingMonitor(MockMonitor):
    """Keeps what the plain MockMonitor drops: parents, options, and duplicate URNs."""

    def __init__(self, mocks: CloudflareMocks) -> None:
        super().__init__(mocks)
        self.registered: list[RegisteredResource] = []
        self.duplicates: list[str] = []

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if any(r.urn == urn for r in self.registered):
            # The engine refuses duplicate URNs; MockMonitor would silently overwrite.
            self.duplicates.append(f"duplicate resource URN {urn}")
            raise ProviderRejected(f"duplicate resource URN {urn}")
        secret_paths: list[str] = []
        inputs = _plain(pulumi.runtime.rpc.deserialize_properties(request.object, keep_unknowns=True), "", secret_paths)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        self.registered.append(
            RegisteredResource(
                type=request.type,
                name=request.name,
                urn=urn,
                id=response.id or None,
                custom=bool(request.custom),
                parent_urn=request.parent or None,
                inputs=inputs,
                secret_paths=tuple(secret_paths),
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                delete_before_replace=bool(request.deleteBeforeReplace),
                additional_secret_outputs=tuple(request.additionalSecretOutputs),
                dependencies=tuple(request.dependencies),
            )
        )
        return response


def project_account(project_dir: Path) -> FakeAccount:
    """The fake account holds every zone named by a tenant stack file (read raw, not validated)."""
    account = FakeAccount()
    for stack in tenant_stacks(project_dir):
        try:
            zone = (read_stack_config(project_dir, stack).get(TENANT_KEY) or {}).get("zone") or {}
        except (ConfigError, AttributeError):
            continue
        if isinstance(zone, dict) and zone.get("id") and zone.get("name"):
            account.zones[str(zone["id"])] = str(zone["name"])
    return account


def deployed_platform(project_dir: Path, account: FakeAccount) -> FakeAccount:
    """`account` as a tenant stack finds it once the platform stack is up: in dispatch mode that is
    the namespace and the routing KV a tenant's StackReference reads (a no-op in workers mode)."""
    try:
        platform = read_stack_config(project_dir, PLATFORM_STACK).get(PLATFORM_KEY) or {}
    except ConfigError:
        return account  # no platform file: the tenant run says what is missing
    if isinstance(platform, dict) and platform.get("isolation") == "dispatch":
        saas = platform.get("saas_zone") or {}
        if isinstance(saas, dict) and saas.get("id") and saas.get("name"):
            account.zones.setdefault(str(saas["id"]), str(saas["name"]))
        OfflineSession(project_dir, PLATFORM_STACK, account=account).run()
    return account


def stack_runtime_config(
    project_dir: Path, stack: str, secret_values: Mapping[str, str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """The config map the engine would hand the program (objects as JSON text), and its secret keys.

    As the engine does it: every `secure:` value decrypted in place (here: the value given for a
    secret's name, else a placeholder), plain values as they are, and a key secret when any value
    under it is `secure:` (go config/value.go, hasSecureValue). The program sees nothing more.
    """
    raw = read_stack_config(project_dir, stack)
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    chosen = secret_values or {}
    declared = _declared_secret_names(raw)
    if declared and SECRETS_KEY not in raw:
        raw = {**raw, SECRETS_KEY: {}}

    def decrypt(key: str) -> Callable[[list[Segment], str], str]:
        if key != SECRETS_KEY:
            return lambda _segs, _ciphertext: PLACEHOLDER
        return lambda segs, _ciphertext: chosen.get(str(segs[0]), PLACEHOLDER) if segs else PLACEHOLDER

    for key, value in raw.items():
        opened = map_secure(value, decrypt(key), [])
        secret = bool(secure_key_paths(key, value))
        if key == SECRETS_KEY and isinstance(opened, dict) and any(n not in opened for n in declared):
            # Declared but not set yet counts as set here: a plan shows what `up` would create once
            # it is (the CLI's `plan` names the missing ones; `up` itself refuses them).
            opened = {**opened, **{n: chosen.get(n, PLACEHOLDER) for n in declared if n not in opened}}
            secret = True
        if secret:
            secret_keys.append(key)
        config[key] = opened if isinstance(opened, str) else json.dumps(opened)
    return config, secret_keys


def _declared_secret_names(raw: Mapping[str, Any]) -> list[str]:
    tenant = raw.get(TENANT_KEY)
    names = tenant.get("secret_names") if isinstance(tenant, dict) else None
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def _drop_reported_failures(loop: asyncio.AbstractEventLoop) -> None:
    """Silence asyncio's "exception never retrieved" for our own errors.

    When the mock refuses a resource, every Output that depends on it holds the same exception and
    asyncio logs each copy when it is collected. The caller already received it once.
    """

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), EdgeError):
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def _current_loop() -> asyncio.AbstractEventLoop:
    """The loop the SDK's test runner will use (pulumi/runtime/sync_await.py `_ensure_event_loop`).

    After an `asyncio.run` in this thread (a Temporal client, the control room's helpers) there is no
    current loop, and `get_event_loop` raises; the SDK then makes one, so we do the same first.
    """
    try:
        return asyncio.get_event_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        return loop


def _release_rpcs(failed: bool) -> None:
    """Let go of this run's RPC futures while the failure filter is still installed.

    The SDK's test runner keeps every RPC of a run in the settings' RPC manager and clears it only
    when the next run starts (pulumi/runtime/mocks.py `test`). A refused run's futures then die
    later, after the filter is gone, and asyncio prints one "exception was never retrieved"
    traceback per dependent Output: hundreds for one `plan --all` with one bad stack. Only a
    failed run holds failed futures, so only it pays for a collection.
    """
    settings = pulumi.runtime.settings.SETTINGS
    settings.rpc_manager.clear()
    settings.outputs.clear()
    if failed:
        gc.collect()


class OfflineSession:
    """One evaluation of the program; `monitor` stays inspectable when the run fails."""

    def __init__(
        self,
        project_dir: Path,
        stack: str,
        *,
        account: FakeAccount | None = None,
        secret_values: Mapping[str, str] | None = None,
        config: Mapping[str, Any] | None = None,
        secret_keys: Sequence[str] | None = None,
        preview: bool = False,
        program: Callable[[], None] | None = None,
    ) -> None:
        """`config` (decrypted, as the engine hands it) replaces the stack file's, with `secret_keys`
        the keys the engine marks secret (default: `clawdbot:secrets`); `program` replaces the
        stack's program (tests of component misuse)."""
        self.project_dir = project_dir
        self.program = program
        self.stack = stack
        if config is None:
            self.config, self.secret_keys = stack_runtime_config(project_dir, stack, secret_values)
        else:
            self.config = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
            default = [SECRETS_KEY] if SECRETS_KEY in config else []
            self.secret_keys = list(default if secret_keys is None else secret_keys)
        if account is None:
            account = project_account(project_dir)
            if stack != PLATFORM_STACK:
                account = deployed_platform(project_dir, account)
        self.mocks = CloudflareMocks(account, preview=preview)
        self.monitor = RecordingMonitor(self.mocks)
        self.preview = preview

    def _refusal(self) -> str | None:
        found = self.monitor.duplicates + self.mocks.rejections
        return f"stack {self.stack}: {found[0]}" if found else None

    def run(self) -> OfflineRun:
        """Evaluate the program; raise ConfigError or ProviderRejected as `pulumi up` would fail.

        Leaves no global state behind: the SDK keeps its settings, config and root resource in
        ContextVars, so the run happens in a copy of the current context (as the Automation API's
        inline server runs each program), and the event loop's exception handler is put back.
        """
        loop = _current_loop()
        previous_handler = loop.get_exception_handler()
        _drop_reported_failures(loop)
        context = contextvars.copy_context()
        failed = True
        try:
            run = context.run(self._run)
            failed = False
            return run
        except EdgeError as exc:
            # The traceback's SDK frames hold every Output of the run; whoever keeps the error
            # (a report, pytest) would keep them alive until the filter below is gone.
            exc.__context__ = None
            raise exc.with_traceback(None) from None
        finally:
            context.run(_release_rpcs, failed)
            loop.set_exception_handler(previous_handler)

    def _run(self) -> OfflineRun:
        pulumi.runtime.set_mocks(
            self.mocks,
            project=project_name(self.project_dir),
            stack=self.stack,
            preview=self.preview,
            monitor=self.monitor,
        )
        pulumi.runtime.set_all_config(self.config, self.secret_keys)
        run = OfflineRun(stack=self.stack)

        async def collect() -> None:
            root = pulumi.runtime.settings.get_root_resource()
            exported: dict[str, Any] = getattr(root, "outputs", {})
            for key, value in exported.items():
                output = pulumi.Output.from_input(value)
                run.outputs[key] = _plain(await output.future(with_unknowns=True), "", [])
                if await output.is_secret():
                    run.secret_outputs.add(key)

        def program() -> Any:
            if self.program is None:
                run_program(self.project_dir)
            else:
                self.program()
            return pulumi.Output.from_input(collect())

        try:
            pulumi.runtime.test(program)()  # type: ignore[no-untyped-call]
        except pulumi.RunError as exc:
            raise ConfigError(str(exc)) from None
        except EdgeError:
            raise
        except Exception:
            refusal = self._refusal()
            if refusal:
                raise ProviderRejected(refusal) from None
            raise
        refusal = self._refusal()
        if refusal:
            raise ProviderRejected(refusal)
        run.resources = list(self.monitor.registered)
        if self.stack == PLATFORM_STACK and not self.preview:
            # What the tenant stacks' StackReference reads, as a deployed platform stack holds it.
            reference = platform_reference(project_name(self.project_dir))
            self.mocks.account.stack_outputs[reference] = dict(run.outputs)
        return run


def run_offline(
    project_dir: Path,
    stack: str,
    *,
    account: FakeAccount | None = None,
    secret_values: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    preview: bool = False,
) -> OfflineRun:
    """Evaluate the program for `stack` under the mocks (see OfflineSession).

    `config` replaces the stack file's config map (keys like `clawdbot:tenant`), for tests.
    """
    session = OfflineSession(
        project_dir, stack, account=account, secret_values=secret_values, config=config, preview=preview
    )
    return session.run()
