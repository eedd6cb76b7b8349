"""docs/: the generated API page is current, every markdown file renders (balanced code fences, no broken relative
links or anchors), and what the docs name (variables, commands, error codes) exists in the code."""

from __future__ import annotations

import importlib.util
import re
import shlex
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

from shared_models.errors import ErrorCode
from tests.deploy.deploy_support import ROOT, check_invocation, console_scripts, env_example, env_names

DOCS = ROOT / "docs"
MARKDOWN = sorted(DOCS.glob("*.md"))
#: The pages this suite owns; BENCHMARKS.md is written by the benchmark harness and only gets the render check.
OWN_PAGES = ("architecture.md", "api.md", "operations.md", "troubleshooting.md")
#: Names used in the docs as placeholders for the env scheme, not as variables.
PLACEHOLDER_VARIABLES = {"EDGE_SECTION__FIELD", "CENTRAL_SECTION__FIELD"}
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
LINK = re.compile(r"(?<!\\)\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s+(\S+)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
#: Code blocks whose lines are commands (a diagram's labels are not).
COMMAND_BLOCKS = {"sh", "bash", "shell", "console", "ini"}
SHELL_OPERATORS = {"|", "||", "&&", ";", ">", ">>", "<", "&", ")", "\\"}


def _gen_api() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_api", DOCS / "gen_api.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def split_fences(text: str) -> tuple[list[tuple[int, str]], list[tuple[str, list[str]]]]:
    """(prose lines with their numbers, code blocks as (info string, lines)); fails on an unclosed fence."""
    prose: list[tuple[int, str]] = []
    blocks: list[tuple[str, list[str]]] = []
    fence: tuple[str, int] | None = None
    opened_at = 0
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if fence is None:
            if match:
                fence, opened_at = (match.group(1)[0], len(match.group(1))), number
                blocks.append((match.group(2).strip(), []))
            else:
                prose.append((number, line))
        elif match and match.group(1)[0] == fence[0] and len(match.group(1)) >= fence[1] and not match.group(2).strip():
            fence = None
        else:
            blocks[-1][1].append(line)
    assert fence is None, f"code fence opened on line {opened_at} is never closed"
    return prose, blocks


def github_slug(heading: str) -> str:
    """The anchor GitHub derives from a heading's text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = text.replace("`", "").replace("*", "")
    kept = "".join(ch for ch in text.strip().lower() if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Anchors of a markdown file's headings (duplicates get -1, -2 ... as on GitHub)."""
    prose, _blocks = split_fences(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found = set()
    for _number, line in prose:
        match = HEADING.match(line)
        if match:
            slug = github_slug(match.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(found)


def _without_code_spans(line: str) -> str:
    return re.sub(r"(`+)(.+?)\1", " ", line)


def test_api_md_is_generated_from_the_openapi_document() -> None:
    generated = _gen_api().build()
    current = (DOCS / "api.md").read_text(encoding="utf-8")
    assert current == generated, "docs/api.md is out of date: run .venv/bin/python docs/gen_api.py"


def test_gen_api_check_mode(tmp_path: Path) -> None:
    module = _gen_api()
    stale = tmp_path / "api.md"
    stale.write_text("old\n", encoding="utf-8")
    assert module.main(["--check", "--output", str(stale)]) == 1
    assert module.main(["--output", str(stale)]) == 0
    assert module.main(["--check", "--output", str(stale)]) == 0


def test_the_fence_and_anchor_checks_catch_mistakes() -> None:
    with pytest.raises(AssertionError, match="never closed"):
        split_fences("text\n```sh\ncode\n")
    assert split_fences("~~~\n```\n~~~\n")[1] == [("", ["```"])]
    assert github_slug("`POST /api/v1/ocr/jobs/{job_id}`") == "post-apiv1ocrjobsjob_id"
    assert github_slug("Model rollout and rollback") == "model-rollout-and-rollback"


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: p.name)
def test_markdown_renders_without_broken_links(path: Path) -> None:
    prose, _blocks = split_fences(path.read_text(encoding="utf-8"))  # fails on an unbalanced fence
    for number, line in prose:
        targets = [m.group(2) for m in LINK.finditer(_without_code_spans(line))]
        targets += [m.group(1) for m in [REFERENCE.match(line)] if m]
        for target in targets:
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            assert linked.exists(), f"{path.name}:{number}: broken link {target}"
            if anchor and linked.suffix == ".md":
                assert anchor in anchors(linked), f"{path.name}:{number}: no heading for #{anchor} in {linked.name}"


@pytest.mark.parametrize("name", OWN_PAGES)
def test_variables_in_the_docs_are_read_by_the_code(name: str) -> None:
    text = (DOCS / name).read_text(encoding="utf-8")
    known = set(env_names("edge")) | set(env_names("central")) | set(env_example()) | PLACEHOLDER_VARIABLES
    named = set(re.findall(r"\b(?:EDGE|CENTRAL)_[A-Z0-9_]*[A-Z0-9]\b", text))
    assert not named - known, f"{name} names variables no config loader reads: {sorted(named - known)}"


@pytest.mark.parametrize("name", OWN_PAGES)
def test_commands_in_the_docs_exist(name: str) -> None:
    _prose, blocks = split_fences((DOCS / name).read_text(encoding="utf-8"))
    prose_commands = re.findall(r"`([^`]*\b(?:edge-node|central-sync) [^`]*)`", (DOCS / name).read_text("utf-8"))
    lines = [line for info, block in blocks if info in COMMAND_BLOCKS for line in block] + prose_commands
    scripts = "|".join(re.escape(s) for s in console_scripts())
    checked = 0
    for line in lines:
        for match in re.finditer(rf"(?:^|[\s(/])({scripts})(\s.*)?$", line):
            try:
                tokens = shlex.split(match.group(0).strip().lstrip("(/"), posix=True)
            except ValueError:
                tokens = match.group(0).split()
            argv: list[str] = []
            for token in tokens:
                if token in SHELL_OPERATORS or token.startswith(("|", ">", "$(", ")")):
                    break
                argv.append(token)
            argv[0] = match.group(1)
            if len(argv) > 1 and argv[1] not in ("...", "|"):
                check_invocation([a for a in argv if a != "..."])
                checked += 1
    if name in ("operations.md",):
        assert checked, "the operations page shows commands; none were found to check"


def test_troubleshooting_covers_every_error_code() -> None:
    headings = anchors(DOCS / "troubleshooting.md")
    missing = [code.value for code in ErrorCode if github_slug(f"`{code.value}`") not in headings]
    assert not missing, f"docs/troubleshooting.md has no section for {missing}"
