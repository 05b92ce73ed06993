"""The walk-through a person runs first: the example tenants on a local edge, end to end.

Everything happens in a scratch directory (its own project copy, passphrase file, relay keys and
local edge state), so the demo never touches the operator's project, secrets or running edge.
Secret values are generated fresh and never printed.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.measure import Measurement

from orchestrator.config.stack_file import set_value
from orchestrator.config.tenant_config import TENANT_KEY, load_platform_spec, tenant_stacks
from orchestrator.core.contract import REPO_ROOT, contract
from orchestrator.core.crypto import webhook_signature
from orchestrator.core.model import Isolation
from orchestrator.core.names import stack_file, tenant_stack
from orchestrator.local_edge import LocalEdge, prepare_tenants, probe_local, push_config, tenant_request
from orchestrator.local_edge.errors import LocalEdgeError
from orchestrator.local_edge.runtime import RuntimeInfo
from orchestrator.ops.health import health_table
from orchestrator.ops.scratch import ScratchProject, copy_examples, write_passphrase_file

WEBHOOK_TENANT = "acme"
UNKNOWN_HOST = "nobody.example.org"
NEW_GREETING = "Hello from Acme, pushed live by the demo"
PIPED = 1_000
"""Columns a piped health table may take: wider than any row it has."""


@dataclass(frozen=True)
class DemoOptions:
    workdir: Path | None = None
    """Where the scratch project and state go (default: a new temporary directory)."""
    keep: bool = False
    """Keep the scratch directory afterwards (it holds the fresh passphrase and relay keys)."""
    port: int = 0
    config_ttl_seconds: int | None = None
    """None: the Worker's real config cache TTL (the demo waits it out)."""
    source: Path = REPO_ROOT
    isolation: Isolation = "workers"
    """`dispatch`: the tenants as user Workers behind the real dispatch and outbound Workers."""


class Demo:
    def __init__(self, options: DemoOptions, console: Console) -> None:
        self.options = options
        self.out = console
        self.step_no = 0
        self.project: ScratchProject | None = None

    def step(self, title: str) -> None:
        self.step_no += 1
        self.out.rule(f"[bold]{self.step_no}. {title}")

    def note(self, text: str) -> None:
        # soft_wrap: piped (a CI log, `| tee`) rich folds at 80 columns, mid-phrase; a note stays one line.
        self.out.print(f"   {text}", highlight=False, soft_wrap=True)

    def run(self) -> None:
        if not tenant_stacks(self.options.source):
            # An installed package carries the project files but no tenant: the examples live in a clone.
            raise LocalEdgeError(
                f"the demo runs the example tenants of a clone of the repository (Pulumi.prod.<tenant>.yaml), "
                f"and {self.options.source} has none: run it from a clone, with `bash scripts/demo.sh`"
            )
        root = self.options.workdir or Path(tempfile.mkdtemp(prefix="clawdbot-demo-"))
        if self.options.workdir is not None and root.exists() and any(root.iterdir()):
            # The demo deletes its directory afterwards: never a folder that holds anything already
            # (pointed at ~/.clawdbot it would replace the real passphrase and delete the state).
            raise LocalEdgeError(f"--workdir {root}: exists and is not empty; give a new or empty directory")
        root.mkdir(parents=True, exist_ok=True)
        edge = LocalEdge(root / "local-edge")
        started = time.monotonic()
        try:
            self._walk(root, edge)
            self.step("Tear down")
            edge.down()
            self.note("local edge stopped (its KV and D1 data would survive a restart)")
            self.out.print(f"\n[bold green]Demo finished in {time.monotonic() - started:.0f} s.[/]")
        finally:
            edge.down()  # also after a failure: never leave a runtime behind
            if self.options.keep:
                self.note(f"scratch directory kept: {root}")
            else:
                if self.project is not None:  # its passphrase goes with it: so do the keys it derived
                    self.project.forget_keys()
                shutil.rmtree(root, ignore_errors=True)

    def _walk(self, root: Path, edge: LocalEdge) -> None:
        self.step("A scratch copy of the example tenants, with fresh secrets")
        passphrase_file = root / "passphrase"
        isolation = self.options.isolation
        project = self.project = copy_examples(
            self.options.source, root / "project", write_passphrase_file(passphrase_file), isolation
        )
        if isolation == "dispatch":
            self.note("dispatch mode: the platform stack says isolation: dispatch; tenant routes are whole hostnames")
        for name, values in project.secrets.items():
            file_name = stack_file(project.root, tenant_stack(name)).name
            self.note(f"{name}: {file_name}, secrets {', '.join(values)} (random, never shown)")
        self.note(f"passphrase file {passphrase_file} (0600); nothing leaves {root}")

        routed_by = "the dispatcher, by hostname" if isolation == "dispatch" else "hostname"
        self.step(f"Bring up the local edge: every tenant in one workerd, routed by {routed_by}")
        prepared = prepare_tenants(project.root, edge.layout, passphrase_file=passphrase_file, progress=self.note)
        info = edge.up(
            prepared,
            port=self.options.port,
            config_ttl_seconds=self.options.config_ttl_seconds,
            progress=self.note,
            platform=load_platform_spec(project.root),
        )
        for tenant in info.tenants:
            applied = ", ".join(tenant.migrations.applied) or "already applied"
            self.note(
                f"{tenant.tenant}: {', '.join(tenant.hostnames)} → KV {tenant.kv_namespace}, "
                f"D1 {tenant.d1_database}, migrations {applied}"
            )
        self.note(f"runtime at {info.url}")

        self.step("Fleet health")
        self._health(edge, info)
        if info.isolation == "dispatch":
            nobody = edge.edge_client().request(UNKNOWN_HOST, "GET", "/")
            self.note(f"the dispatcher, for {UNKNOWN_HOST} (no tenant): HTTP {nobody.status} {nobody.body.decode()}")

        self.step(f"A correctly signed webhook to {WEBHOOK_TENANT}, then a forged one")
        acme = info.tenant(WEBHOOK_TENANT)
        client = edge.edge_client()
        event_id = f"evt_demo_{int(time.time())}"
        body = json.dumps({"id": event_id, "topic": "orders/create", "total": 42, "currency": "EUR"}).encode()
        hook = contract()["webhook"]
        secret = project.secrets[WEBHOOK_TENANT][hook["secret_name"]]
        headers = {
            hook["id_header"]: event_id,
            hook["topic_header"]: "orders/create",
            "Content-Type": "application/json",
        }
        good = tenant_request(
            client,
            acme,
            "POST",
            hook["path"],
            body=body,
            headers={**headers, hook["signature_header"]: webhook_signature(secret, body)},
        )
        self.note(f"signed with the tenant's WEBHOOK_SECRET → HTTP {good.status} {good.body.decode()}")
        guessed = webhook_signature("not-the-secret", body)
        forged = tenant_request(
            client, acme, "POST", hook["path"], body=body, headers={**headers, hook["signature_header"]: guessed}
        )
        self.note(f"signed with a guessed secret         → HTTP {forged.status} {forged.body.decode()}")
        if good.status != 200 or forged.status != 401:
            raise LocalEdgeError(f"webhooks: expected 200 then 401, got {good.status} then {forged.status}")

        self.step(f"The stored event, read back from {WEBHOOK_TENANT}'s own D1 database")
        rows = edge.control().query(
            WEBHOOK_TENANT,
            "SELECT webhook_id, topic, body, received_at FROM webhook_events WHERE webhook_id = ?",
            [event_id],
        )
        for row in rows:
            self.note(f"{row['webhook_id']}  {row['topic']}  {row['received_at']}  {row['body']}")
        if len(rows) != 1:
            raise LocalEdgeError(f"tenant {WEBHOOK_TENANT}: expected the event in D1, found {len(rows)} row(s)")

        self.step(f"Push a config change to {WEBHOOK_TENANT} without restarting")
        self._push(edge, project.root, info)

        self.step("Fleet health after the push")
        self._health(edge, info)

    def _health(self, edge: LocalEdge, info: RuntimeInfo) -> None:
        client = edge.edge_client()
        table = health_table([probe_local(client, t) for t in info.tenants], "Fleet health (local edge)")
        isatty = getattr(self.out.file, "isatty", None)
        if isatty is not None and isatty():
            self.out.print(table)
            return
        # Piped, as wide as its content, as the CLI's tables are (cli/tables.py): no reason folded.
        # print(width=) cannot exceed the console's width (rich 14 console.py `print`), so widen it.
        wanted = Measurement.get(self.out, self.out.options.update_width(PIPED), table).maximum
        width = self.out.width
        self.out.width = max(width, wanted)
        try:
            self.out.print(table)
        finally:
            self.out.width = width

    def _push(self, edge: LocalEdge, project_dir: Path, info: RuntimeInfo) -> None:
        acme = info.tenant(WEBHOOK_TENANT)
        path = stack_file(project_dir, tenant_stack(WEBHOOK_TENANT))
        version = acme.config_version + 1
        set_value(path, f"{TENANT_KEY}.config.greeting", NEW_GREETING)
        set_value(path, f"{TENANT_KEY}.config_version", version)
        self.note(f"edited {path.name}: greeting and config_version → {version}")
        result = push_config(edge, project_dir, WEBHOOK_TENANT)
        self.note(
            f"signed config v{result.version} written to KV (was v{result.previous_version}); "
            f"the Worker re-reads KV every {result.ttl_seconds} s"
        )
        client = edge.edge_client()
        deadline = time.monotonic() + result.ttl_seconds + 10
        waited = 0
        while True:
            served = tenant_request(client, acme, "GET", "/").json()
            if served.get("config_version") == version:
                break
            if time.monotonic() > deadline:
                raise LocalEdgeError(
                    f"tenant {WEBHOOK_TENANT}: config v{version} not served after "
                    f"{result.ttl_seconds + 10} s (still v{served.get('config_version')})"
                )
            if waited % 5 == 0:
                self.note(f"… still serving v{served.get('config_version')} from its cache, waiting ({waited} s)")
            time.sleep(1)
            waited += 1
        self.note(
            f'GET / now serves v{served["config_version"]} from {served["config_source"]}: "{served["greeting"]}"'
        )


def run_demo(options: DemoOptions, console: Console | None = None) -> None:
    Demo(options, console or Console()).run()
