"""What changed: the digests that let a fleet run skip a tenant without starting the engine.

Change detection never starts the engine: a stack is skipped when its stack file, the fleet-wide
program digest and the rendered bundle equal what the fleet recorded at its last `up` that passed
the health gate, and the state file has not changed since (someone else running `pulumi`
invalidates the record). A deployment that has not passed its gate has no record.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import hashlib
import importlib.metadata
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from orchestrator.config.atomic_file import write_atomically
from orchestrator.config.tenant_config import load_platform_spec, load_tenant_spec
from orchestrator.core.errors import EdgeError
from orchestrator.core.names import PLATFORM_STACK, stack_file
from orchestrator.fleet.ports import (
    DeployedRecord,
)


@dataclass(frozen=True)
class Desired:
    """What a tenant should look like, as cheap digests (no rendering)."""

    stack: str
    config_digest: str
    program_digest: str
    render_digest: str


@dataclass(frozen=True)
class Rendered:
    bundle_hash: str
    config_version: int


# ---------------------------------------------------------------------------------------------
# Change detection


@dataclass(frozen=True)
class Decision:
    changed: bool
    reason: str
    refreshed: DeployedRecord | None = None
    """Unchanged after a re-render: the record with the current render digest (next run: fast path)."""


def decide(
    desired: Desired,
    record: DeployedRecord | None,
    *,
    state_changed: Callable[[DeployedRecord], bool],
    render: Callable[[], Rendered],
) -> Decision:
    """Does this stack need an `up`? Renders only when nothing cheaper can answer."""
    if record is None:
        return Decision(True, "not deployed by the fleet yet")
    if state_changed(record):
        return Decision(True, "state changed outside the fleet since the last deploy")
    if record.config_digest != desired.config_digest:
        return Decision(True, "stack config changed")
    if record.program_digest != desired.program_digest:
        return Decision(True, "program, components, platform config or provider version changed")
    if record.render_digest == desired.render_digest:
        return Decision(False, "unchanged")
    rendered = render()
    if rendered.bundle_hash != record.bundle_hash or rendered.config_version != record.config_version:
        return Decision(True, "rendered bundle changed")
    refreshed = record.model_copy(update={"render_digest": desired.render_digest})
    return Decision(False, "unchanged (re-rendered: same bundle)", refreshed)


def _label(path: Path, roots: Sequence[Path]) -> str:
    """A path relative to the first root holding it, so moving the checkout redeploys nobody."""
    for index, root in enumerate(roots):
        if path.is_relative_to(root):
            return f"{index}:{path.relative_to(root)}"
    return str(path)


def file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def tree_digest(paths: Iterable[Path], extra: Iterable[str] = (), roots: Sequence[Path] = ()) -> str:
    digest = hashlib.sha256()
    for path in sorted(set(paths)):
        digest.update(_label(path, roots).encode() + b"\0")
        digest.update((file_digest(path) or "missing").encode() + b"\0")
    for item in extra:
        digest.update(item.encode() + b"\0")
    return digest.hexdigest()


def _files(root: Path, *patterns: str) -> list[Path]:
    return [p for pattern in patterns for p in root.glob(pattern) if p.is_file() and "__pycache__" not in p.parts]


PROGRAM_ENTRY = "orchestrator.program"
CODE_PACKAGES = ("components", "orchestrator")
"""The repo's own packages; everything else the program imports is pinned by version."""
SHAPING_MODULES = ("components", "orchestrator.core", PROGRAM_ENTRY)
"""Of what the program imports, what decides which resources exist and what they hold. The rest
of its import closure (`config`: stack files, settings, the passphrase file) only brings values in,
and a change there that matters shows in the rendered bundle, which the render digest guards."""
BUNDLE_INPUTS = ("worker_src/src/**/*", "worker_src/migrations/*", "contract/*")
"""What a rendered bundle is made of besides the tenant's config: the Worker, its migrations, the contract."""


def _module_file(repo_root: Path, name: str) -> Path | None:
    parts = name.split(".")
    if not name or parts[0] not in CODE_PACKAGES:
        return None
    base = repo_root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(tree: ast.AST, package: str) -> Iterable[str]:
    """Every module name an import statement (or a literal `import_module`) may load."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)  # `from pkg import module`
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value


def program_modules(repo_root: Path, entry: str = PROGRAM_ENTRY) -> list[Path]:
    """The files of every repo module (components/, orchestrator/) that `entry` imports, transitively.

    Read from the source rather than from `sys.modules`: it covers imports inside functions that have
    not run yet, and leaves out modules this process loaded for other reasons (the CLI, the fleet),
    whose edits must not redeploy every tenant. Package `__init__` files count (they run on import).
    """
    found: dict[str, Path] = {}
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        path = _module_file(repo_root, name)
        if path is None:
            continue
        found[name] = path
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        package = name if path.name == "__init__.py" else ".".join(parts[:-1])
        todo.extend(_imported_names(parse_source(path), package))
    return sorted(found.values())


CLOSURE_CACHE = "program-modules.json"
"""File in a private directory (the work root) remembering `program_modules` for one source tree."""


def source_tree_key(repo_root: Path) -> str:
    """Digest of every repo module's path and bytes: all that `program_modules` reads (its own code included)."""
    digest = hashlib.sha256()
    for package in CODE_PACKAGES:
        for path in sorted((repo_root / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                digest.update(
                    str(path.relative_to(repo_root)).encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest()
                )
    return digest.hexdigest()


def cached_program_modules(repo_root: Path, cache_dir: Path | None) -> list[Path]:
    """`program_modules(repo_root)`, remembered in `cache_dir` for the source tree it was computed on.

    Parsing the program's import closure is most of what a run with nothing to do costs; the
    closure only changes when a repo module does, and the key covers every one of them, so a
    remembered closure is exactly the computed one. A missing, unreadable or foreign cache is
    recomputed; failing to write one only costs the next run the parse.
    """
    if cache_dir is None:
        return program_modules(repo_root)
    key = source_tree_key(repo_root)
    path = cache_dir / CLOSURE_CACHE
    try:
        remembered = json.loads(path.read_bytes())
        if isinstance(remembered, dict) and remembered.get("key") == key and remembered.get("entry") == PROGRAM_ENTRY:
            return [repo_root / name for name in remembered["modules"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    found = program_modules(repo_root)
    document = {"key": key, "entry": PROGRAM_ENTRY, "modules": [str(p.relative_to(repo_root)) for p in found]}
    with contextlib.suppress(OSError):
        if cache_dir.is_dir():
            write_atomically(path, json.dumps(document).encode())
    return found


def parse_source(path: Path) -> ast.Module:
    """`ast.parse` of a file, safe from CPython 3.11's spurious recursion-depth SystemError."""
    # With the garbage collector off: CPython 3.11 keeps the AST builder's recursion count per
    # interpreter, so a finalizer that lets another thread parse midway (an asyncio future logging
    # "exception was never retrieved") fails this parse with a spurious SystemError "AST
    # constructor recursion depth mismatch" (python/cpython#106905).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(path.read_bytes(), filename=str(path))
    finally:
        if enabled:
            gc.enable()


def _shapes_resources(repo_root: Path, path: Path) -> bool:
    name = ".".join(path.relative_to(repo_root).with_suffix("").parts).removesuffix(".__init__")
    return any(name == module or name.startswith(module + ".") for module in SHAPING_MODULES)


@dataclass(frozen=True)
class FleetInputs:
    """Fleet-wide digests, computed once per run."""

    program_digest: str
    render_digest: str

    @classmethod
    def compute(cls, project_dir: Path, repo_root: Path, cache_dir: Path | None = None) -> FleetInputs:
        """Program digest: what shapes the deployed resources (components, the program and the core
        modules it imports, the bundle's inputs, Pulumi.yaml, the platform stack, provider versions).
        The CLI, the fleet, the engine adapter, backups, the test vectors are not in it: editing them
        redeploys nobody. Render digest: everything a render reads, so a change there re-renders
        (cheap) and redeploys only tenants whose bundle really changed. `cache_dir`: where the
        program's import closure may be remembered (`cached_program_modules`)."""
        versions = [
            f"{pkg}=={importlib.metadata.version(pkg)}" for pkg in ("pulumi", "pulumi-cloudflare", "pulumi-random")
        ]
        program = [
            *_files(repo_root, "components/**/*.py"),
            *(p for p in cached_program_modules(repo_root, cache_dir) if _shapes_resources(repo_root, p)),
            *_files(repo_root, *BUNDLE_INPUTS),
            project_dir / "Pulumi.yaml",
            stack_file(project_dir, PLATFORM_STACK),
        ]
        render = _files(repo_root, "orchestrator/core/**/*.py", "orchestrator/config/**/*.py", *BUNDLE_INPUTS)
        roots = (repo_root, project_dir)
        return cls(tree_digest(program, versions, roots), tree_digest(render, roots=roots))

    def desired(self, project_dir: Path, stack: str) -> Desired:
        path = stack_file(project_dir, stack)
        digest = file_digest(path)
        if digest is None:
            raise EdgeError(f"stack {stack}: no stack file {path}")
        return Desired(stack, digest, self.program_digest, self.render_digest)


def bundle_renderer(project_dir: Path) -> Callable[[str], Rendered]:
    """A tenant's bundle identity (hash, config version) as `render_bundle` gives it, without rendering
    the embedded module (`orchestrator.core.render.bundle_identity`, imported on first use)."""
    platform = cache(lambda: load_platform_spec(project_dir))

    def render(stack: str) -> Rendered:
        from orchestrator.core.render import bundle_identity

        bundle_hash, config_version = bundle_identity(load_tenant_spec(project_dir, stack), platform())
        return Rendered(bundle_hash, config_version)

    return render
