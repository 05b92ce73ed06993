"""setup-vps.sh's downloads: pinned SHA-256 checked before use, refusals, the pins, pin-pulumi.sh.

Nothing is downloaded here (no network): `--mirror DIR` serves stand-in archives, and a scratch
copy of scripts/ pins their hashes. That exercises the real verification code; the real pins
are checked for shape and against their sources in the files' comments.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest
from requirement_pins import read_pins
from vps_setup import SCRIPT, SCRIPTS, run, run_script, sha256, tar_bytes, tracked_checkout

NODE_VERSION = re.search(r'NODE_VERSION="([^"]+)"', SCRIPT.read_text()).group(1)  # type: ignore[union-attr]
PULUMI_VERSION = re.search(r'PULUMI_VERSION="([^"]+)"', SCRIPT.read_text()).group(1)  # type: ignore[union-attr]
ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
NODE_ARCHIVE = f"node-v{NODE_VERSION}-linux-{ARCH}.tar.xz"
PULUMI_ARCHIVE = f"pulumi-v{PULUMI_VERSION}-linux-{ARCH}.tar.gz"


def stand_in_archives() -> dict[str, bytes]:
    """Archives laid out like the real ones (node-vX-linux-A/bin/node; pulumi/pulumi)."""
    node = tar_bytes({f"node-v{NODE_VERSION}-linux-{ARCH}/bin/node": "#!/bin/sh\necho v0\n"}, "w:xz")
    cli = tar_bytes({"pulumi/pulumi": "#!/bin/sh\n", "pulumi/pulumi-language-python": "#!/bin/sh\n"}, "w:gz")
    return {NODE_ARCHIVE: node, PULUMI_ARCHIVE: cli}


def pin(repo: Path, file: str, archive: str, digest: str) -> None:
    path = repo / "scripts" / file
    kept = [line for line in path.read_text().splitlines() if not line.endswith(f"  {archive}")]
    path.write_text("\n".join([*kept, f"{digest}  {archive}"]) + "\n")


@pytest.fixture
def staged(tmp_path: Path) -> tuple[Path, Path]:
    """A scratch checkout whose pins match the stand-in archives in a mirror directory."""
    repo = tracked_checkout(tmp_path)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name, data in stand_in_archives().items():
        (mirror / name).write_bytes(data)
        pin(repo, "node.sha256" if name.startswith("node") else "pulumi-cli.sha256", name, sha256(data))
    return repo, mirror


def setup(repo: Path, *args: str, tmpdir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmpdir)} if tmpdir else None
    return run_script(repo / "scripts" / "setup-vps.sh", *args, env=env)


def test_verified_archives_are_installed_once(staged: tuple[Path, Path], tmp_path: Path) -> None:
    repo, mirror = staged
    root = tmp_path / "vps"
    result = setup(repo, "--root", str(root), "--mirror", str(mirror))
    assert result.returncode == 0, result.stderr
    opt = root / "opt/clawdbot"
    assert os.access(opt / "node/bin/node", os.X_OK)
    # CLAWDBOT_PULUMI_ROOT=/opt/clawdbot/pulumi: the SDK runs <root>/bin/pulumi
    # (pulumi/automation/_cmd.py: os.path.join(root, "bin", "pulumi")); the language host sits next to it.
    assert os.access(opt / "pulumi/bin/pulumi", os.X_OK) and (opt / "pulumi/bin/pulumi-language-python").exists()
    assert f"verified {NODE_ARCHIVE}" in result.stdout and f"verified {PULUMI_ARCHIVE}" in result.stdout
    assert sorted(p.name for p in opt.iterdir()) == ["app", "node", "pulumi"]  # no .new/.old left

    for archive in mirror.iterdir():
        archive.unlink()  # a second run must not download again
    again = setup(repo, "--root", str(root), "--mirror", str(mirror))
    assert again.returncode == 0, again.stderr
    assert f"{NODE_ARCHIVE} already installed" in again.stdout


@pytest.mark.parametrize("archive", [NODE_ARCHIVE, PULUMI_ARCHIVE])
def test_a_wrong_checksum_is_refused_and_nothing_is_installed(
    staged: tuple[Path, Path], tmp_path: Path, archive: str
) -> None:
    repo, mirror = staged
    (mirror / archive).write_bytes((mirror / archive).read_bytes() + b"tampered")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    root = tmp_path / "vps"
    result = setup(repo, "--root", str(root), "--mirror", str(mirror), tmpdir=scratch)
    assert result.returncode == 1
    got = sha256((mirror / archive).read_bytes())
    assert f"sha256 of {archive} is {got}, but " in result.stderr and "refusing to install it" in result.stderr
    target = root / "opt/clawdbot" / ("node" if archive.startswith("node") else "pulumi")
    assert not target.exists() and not target.with_name(target.name + ".new").exists()
    assert list(scratch.iterdir()) == []  # the bad download is gone too


def test_a_missing_pin_is_refused_before_anything_changes(staged: tuple[Path, Path], tmp_path: Path) -> None:
    repo, mirror = staged
    pins = repo / "scripts/pulumi-cli.sha256"
    pins.write_text("".join(line for line in pins.read_text().splitlines(True) if line.startswith("#")))
    root = tmp_path / "vps"
    result = setup(repo, "--root", str(root), "--mirror", str(mirror))
    assert result.returncode == 1
    assert f"no pinned sha256 for {PULUMI_ARCHIVE}" in result.stderr and "pin-pulumi.sh" in result.stderr
    assert not root.exists()

    dry = setup(repo, "--dry-run", "--root", str(root), "--mirror", str(mirror))
    assert dry.returncode == 1
    assert f"would refuse: no pinned sha256 for {PULUMI_ARCHIVE}" in dry.stdout
    assert "a real run would refuse (1 problem(s))" in dry.stderr
    assert "systemd units" in dry.stdout  # the dry run still shows every step
    assert not root.exists()


def test_a_doubly_pinned_archive_is_refused(staged: tuple[Path, Path], tmp_path: Path) -> None:
    repo, mirror = staged
    pins = repo / "scripts/node.sha256"
    pins.write_text(pins.read_text() + f"{'0' * 64}  {NODE_ARCHIVE}\n")
    result = setup(repo, "--root", str(tmp_path / "vps"), "--mirror", str(mirror))
    assert result.returncode == 1 and f"{NODE_ARCHIVE} is pinned 2 times" in result.stderr


@pytest.mark.parametrize("bad", ["G" * 64, "a" * 63, "a" * 65])
def test_a_malformed_pin_counts_as_no_pin(staged: tuple[Path, Path], tmp_path: Path, bad: str) -> None:
    repo, mirror = staged
    pin(repo, "node.sha256", NODE_ARCHIVE, bad)
    result = setup(repo, "--root", str(tmp_path / "vps"), "--mirror", str(mirror))
    assert result.returncode == 1 and f"no pinned sha256 for {NODE_ARCHIVE}" in result.stderr


def test_an_archive_of_the_wrong_shape_is_refused(staged: tuple[Path, Path], tmp_path: Path) -> None:
    repo, mirror = staged
    odd = tar_bytes({"something/else": "x"}, "w:xz")
    (mirror / NODE_ARCHIVE).write_bytes(odd)
    pin(repo, "node.sha256", NODE_ARCHIVE, sha256(odd))
    root = tmp_path / "vps"
    result = setup(repo, "--root", str(root), "--mirror", str(mirror))
    assert result.returncode == 1 and "has no bin/node" in result.stderr
    assert not (root / "opt/clawdbot/node").exists()


def test_an_archive_missing_from_the_mirror_is_refused(staged: tuple[Path, Path], tmp_path: Path) -> None:
    repo, mirror = staged
    (mirror / PULUMI_ARCHIVE).unlink()
    result = setup(repo, "--root", str(tmp_path / "vps"), "--mirror", str(mirror))
    assert result.returncode == 1 and f"{PULUMI_ARCHIVE} is not in the mirror directory" in result.stderr


def test_without_a_mirror_a_target_root_downloads_nothing(tmp_path: Path) -> None:
    result = run("--root", str(tmp_path / "vps"))
    assert result.returncode == 0, result.stderr
    assert f"skipped (target root, no --mirror): download {NODE_ARCHIVE}" in result.stdout


# ---------------------------------------------------------------------------------------------
# The pins themselves


def test_node_pins_cover_both_architectures_of_the_pinned_version() -> None:
    text = (SCRIPTS / "node.sha256").read_text()
    assert f"# version: {NODE_VERSION}\n" in text
    lines = [line.split() for line in text.splitlines() if line and not line.startswith("#")]
    assert sorted(name for _, name in lines) == [
        f"node-v{NODE_VERSION}-linux-arm64.tar.xz",
        f"node-v{NODE_VERSION}-linux-x64.tar.xz",
    ]
    assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest, _ in lines)


def test_pinned_node_satisfies_the_workers_engines_field() -> None:
    engines = json.loads((SCRIPTS.parent / "worker_src/package.json").read_text())["engines"]["node"]
    floor = re.fullmatch(r">=(\d+)\.(\d+)\.(\d+)", engines)
    assert floor is not None, f"update this test for engines {engines!r}"
    assert tuple(map(int, NODE_VERSION.split("."))) >= tuple(map(int, floor.groups()))


def test_pin_files_hold_only_comments_and_sha256sum_lines() -> None:
    for name in ("node.sha256", "pulumi-cli.sha256", "pulumi-plugins.sha256"):
        for line in (SCRIPTS / name).read_text().splitlines():
            assert line.startswith("#") or re.fullmatch(r"[0-9a-f]{64}  [A-Za-z0-9._-]+\.tar\.(gz|xz)", line), line


def test_the_provider_plugins_are_the_sdks_declared_versions() -> None:
    """The SDKs' pulumi-plugin.json (what the language host reads) names the versions setup installs."""
    listed = subprocess.run(
        [sys.executable, str(SCRIPTS / "vps/provider_plugins.py")], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    pins = read_pins(SCRIPTS.parent / "requirements.txt")
    expected = {f"resource {sdk} {pins[f'pulumi-{sdk}']}" for sdk in ("cloudflare", "random")}
    assert len(expected) == 2 and set(listed) - {""} == expected


def _fake_distribution(site: Path, dist: str, package: str, plugin: dict[str, object]) -> None:
    (site / package).mkdir(parents=True)
    (site / package / "pulumi-plugin.json").write_text(json.dumps(plugin))
    info = site / f"{dist.replace('-', '_')}-1.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0.0\n")
    (info / "RECORD").write_text(f"{package}/pulumi-plugin.json,,\n")


def test_provider_plugins_follow_the_language_hosts_rules(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _fake_distribution(site, "pulumi-extra", "pulumi_extra", {"resource": True, "version": "v1.2.3"})
    _fake_distribution(site, "pulumi-named", "pulumi_named", {"resource": True, "name": "other", "version": "2.0.0"})
    _fake_distribution(site, "pulumi-none", "pulumi_none", {"resource": False, "version": "9.9.9"})
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, str(SCRIPTS / "vps/provider_plugins.py")], capture_output=True, text=True, env=env, check=True
    ).stdout.splitlines()
    assert "resource extra 1.2.3" in out and "resource other 2.0.0" in out
    assert not any(" none " in line or "9.9.9" in line for line in out)

    _fake_distribution(site, "pulumi-nover", "pulumi_nover", {"resource": True})
    bad = subprocess.run(
        [sys.executable, str(SCRIPTS / "vps/provider_plugins.py")], capture_output=True, text=True, env=env, check=False
    )
    assert bad.returncode == 1 and "pulumi-nover" in bad.stderr and "declares no plugin version" in bad.stderr


# ---------------------------------------------------------------------------------------------
# scripts/pin-pulumi.sh: the one command that fills the Pulumi pins


def _pin_sources(tmp_path: Path) -> tuple[Path, Path, Path, list[str]]:
    """A scratch scripts/ copy and two identical source directories with every archive it wants."""
    repo = tracked_checkout(tmp_path)
    names = [f"pulumi-v{PULUMI_VERSION}-linux-{arch}.tar.gz" for arch in ("x64", "arm64")]
    plugins = subprocess.run(
        [sys.executable, str(SCRIPTS / "vps/provider_plugins.py")], capture_output=True, text=True, check=True
    ).stdout.split()
    for kind, name, version in zip(plugins[0::3], plugins[1::3], plugins[2::3], strict=True):
        names += [f"pulumi-{kind}-{name}-v{version}-linux-{arch}.tar.gz" for arch in ("amd64", "arm64")]
    a, b = tmp_path / "get.pulumi.com", tmp_path / "github"
    for source in (a, b):
        source.mkdir()
        for name in names:
            (source / name).write_bytes(f"archive {name}".encode())
        sums = "".join(f"{sha256(f'archive {n}'.encode())}  {n}\n" for n in names if n.startswith("pulumi-v"))
        (source / f"pulumi-{PULUMI_VERSION}-checksums.txt").write_text(sums)
    return repo, a, b, names


def _pin_pulumi(repo: Path, a: Path, b: Path) -> subprocess.CompletedProcess[str]:
    return run_script(repo / "scripts/pin-pulumi.sh", "--sources", str(a), str(b), "--python", sys.executable)


def test_pin_pulumi_pins_what_both_sources_agree_on(tmp_path: Path) -> None:
    repo, a, b, names = _pin_sources(tmp_path)
    result = _pin_pulumi(repo, a, b)
    assert result.returncode == 0, result.stderr
    pinned = (repo / "scripts/pulumi-cli.sha256").read_text() + (repo / "scripts/pulumi-plugins.sha256").read_text()
    for name in names:
        assert f"{sha256(f'archive {name}'.encode())}  {name}\n" in pinned
    again = _pin_pulumi(repo, a, b)  # idempotent: nothing added twice
    assert again.returncode == 0 and "already pinned" in again.stdout
    assert (repo / "scripts/pulumi-cli.sha256").read_text().count(names[0]) == 1


@pytest.mark.parametrize("tamper", ["archive", "checksums", "listed"])
def test_pin_pulumi_pins_nothing_on_any_disagreement(tmp_path: Path, tamper: str) -> None:
    repo, a, b, names = _pin_sources(tmp_path)
    if tamper == "archive":  # a plugin archive differs between the two sources
        (b / names[-1]).write_bytes(b"something else")
    elif tamper == "checksums":  # the release's checksums file differs
        (b / f"pulumi-{PULUMI_VERSION}-checksums.txt").write_text("")
    else:  # both copies agree, but not with the published checksum
        for source in (a, b):
            (source / names[0]).write_bytes(b"rebuilt")
    before = {p.name: p.read_bytes() for p in (repo / "scripts").glob("*.sha256")}
    result = _pin_pulumi(repo, a, b)
    assert result.returncode == 1 and "pinning nothing" in result.stderr
    assert {p.name: p.read_bytes() for p in (repo / "scripts").glob("*.sha256")} == before


def test_pin_pulumi_refuses_to_overwrite_a_different_pin(tmp_path: Path) -> None:
    repo, a, b, names = _pin_sources(tmp_path)
    pin(repo, "pulumi-cli.sha256", names[0], "0" * 64)
    result = _pin_pulumi(repo, a, b)
    assert result.returncode == 1 and "already pins" in result.stderr and "another sha256" in result.stderr


def test_pin_pulumi_needs_two_distinct_sources(tmp_path: Path) -> None:
    repo, a, _, _ = _pin_sources(tmp_path)
    result = _pin_pulumi(repo, a, a)
    assert result.returncode == 1 and "two different copies" in result.stderr


def test_a_dry_run_with_every_pin_in_place_exits_0(staged: tuple[Path, Path]) -> None:
    if any(Path(p).exists() for p in ("/etc/clawdbot", "/var/lib/clawdbot", "/opt/clawdbot")):
        pytest.skip("this machine already has a Clawdbot install")
    repo, mirror = staged
    plugin_arch = {"x64": "amd64", "arm64": "arm64"}[ARCH]
    pin(repo, "pulumi-plugins.sha256", f"pulumi-resource-cloudflare-v6.23.1-linux-{plugin_arch}.tar.gz", "a" * 64)
    result = setup(repo, "--dry-run", "--mirror", str(mirror))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "would refuse" not in result.stdout
    assert f"would download {mirror}/{NODE_ARCHIVE}, check its sha256" in result.stdout
    assert not Path("/opt/clawdbot").exists()
