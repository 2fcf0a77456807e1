"""The examples in README.md and docs/*.md, run against a real server as the README starts it.

How examples are marked (the info string after the opening fence; GitHub highlights by its first word):

- ```` ```sh run ```` (or ``bash run``): a shell example to run. ```` ```python run ````: a Python script to run.
- ```` ```text output ```` or ```` ```json output ````, right after a ``run`` block (blank lines between are
  fine): what that block prints on standard output.
- Anything else (no ``run``) is shown, never run: commands the test does itself (``python3 dev.py serve``) or
  that need what a test does not have (PostgreSQL, a person at a browser).

How they run, one page at a time:

- One server per page: ``presenced serve --demo`` (the ``presenced`` next to ``sys.executable``), or the
  arguments in a comment ``<!-- examples: serve --demo --clock manual -->`` on the page, plus ``--port 0``;
  with ``HOME`` and ``XDG_DATA_HOME`` in a temporary directory, so the default data directory
  ``~/.local/share/presenced`` is a new, empty one.
- The only change made to a page's text is ``127.0.0.1:8000`` becoming the address the server listens on.
- The blocks run in the page's order, from the repository root, with that ``HOME``; without ``PRESENCED_*``
  or certificate variables (``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``, ...) and without the virtual
  environment's ``bin`` on ``PATH``, so they say ``.venv/bin/presenced`` as a reader must.
- A shell block runs in a new ``bash`` with ``set -euo pipefail``, after the variables that earlier shell
  blocks of the page set (exported or not) are restored. The working directory and functions are not
  carried over. A Python block runs with ``sys.executable`` (the virtual environment's Python) and the
  variables earlier shell blocks exported.
- A block must exit with status 0 within ``BLOCK_TIMEOUT`` seconds, and print what its output block shows:
  - ``text output``: each non-blank line of the output block matches a line of standard output, in order
    (other lines may come between); ``...`` in a line stands for any text.
  - ``json output``: standard output is a sequence of JSON values, as many as the output block's, and each
    matches its counterpart: objects have the same members and lists the same items, in order, and other
    values are equal, except that the string ``"..."`` matches any value, ``...`` inside a string stands
    for any text, a member ``"...": "..."`` allows further members, and a last list item ``"..."`` allows
    any number of further items.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import stop_process

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
DEFAULT_SERVE = ["serve", "--demo"]
DOCUMENTED_ADDRESS = "127.0.0.1:8000"
STARTUP_TIMEOUT = 60
BLOCK_TIMEOUT = 60
ELLIPSIS = "..."
SHELLS = {"sh", "bash"}
LANGUAGES = {*SHELLS, "python"}
OUTPUTS = {"text", "json"}
#: Variables the examples must set themselves if they need them.
UNSET = {"REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "VIRTUAL_ENV"}
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
SERVE_COMMENT = re.compile(r"^<!--\s*examples:\s*(?P<args>.*?)\s*-->$")


# --- reading the pages ------------------------------------------------------------------------------------


@dataclass
class Block:
    """One fenced block: its language, the words after it, its text and the line its fence is on."""

    page: Path
    line: int
    language: str
    flags: list[str]
    text: str
    output: Block | None = None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return "run" in self.flags

    @property
    def is_output(self) -> bool:
        return "output" in self.flags


def fenced_blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, with ``output`` blocks attached to the block before them."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    previous_end = -2  # the line after the last block's closing fence, to tell "right after"
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        words = opening["info"].split()
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                break
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        block = Block(page, i + 1, words[0] if words else "", words[1:], "\n".join(body) + "\n")
        adjacent = all(not line.strip() for line in lines[previous_end:i])
        if block.is_output and blocks and adjacent and blocks[-1].runs and blocks[-1].output is None:
            blocks[-1].output = block
        else:
            blocks.append(block)
        previous_end = j + 1
        i = j + 1
    return blocks


def serve_arguments(page: Path) -> list[str]:
    """The arguments of a ``<!-- examples: serve ... -->`` line above the page's title, else ``serve --demo``."""
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            break
        found = SERVE_COMMENT.match(line.strip())
        if found:
            return shlex.split(found["args"])
    return list(DEFAULT_SERVE)


def runnable(page: Path) -> list[Block]:
    return [block for block in fenced_blocks(page) if block.runs]


def marking_problems(page: Path) -> list[str]:
    """Marks the runner would misread: ``run`` on another language, an ``output`` block with nothing to run."""
    problems = []
    for block in fenced_blocks(page):
        if block.runs and block.language not in LANGUAGES:
            problems.append(f"{block.where}: 'run' needs one of {sorted(LANGUAGES)}, not {block.language!r}")
        if block.is_output:
            problems.append(f"{block.where}: an output block must come right after a 'run' block")
        if block.output is not None and block.output.language not in OUTPUTS:
            problems.append(f"{block.output.where}: an output block is one of {sorted(OUTPUTS)}")
        if block.output is not None and not block.output.text.replace(ELLIPSIS, "").strip():
            problems.append(f"{block.output.where}: an output block that shows nothing checks nothing")
        if block.runs and block.output is None and "curl " in block.text and "--fail" not in block.text:
            problems.append(f"{block.where}: a curl without an output block needs --fail, or an error passes")
    args = serve_arguments(page)
    if not args or args[0] != "serve" or any(a == "--port" or a.startswith("--port=") for a in args):
        problems.append(f"{page.relative_to(ROOT)}: '<!-- examples: serve ... -->' names serve's flags, not --port")
    return problems


# --- comparing what a block printed -----------------------------------------------------------------------


def text_matches(pattern: str, actual: str) -> bool:
    """``actual`` equals ``pattern``, where each ``...`` of the pattern stands for any text."""
    regex = ".*".join(re.escape(part) for part in pattern.split(ELLIPSIS))
    return re.fullmatch(regex, actual, flags=re.DOTALL) is not None


def text_output_problem(expected: str, stdout: str) -> str | None:
    """Each non-blank expected line matches a printed line, in order; None when they all do."""
    printed = [line.rstrip() for line in stdout.splitlines()]
    position = 0
    for wanted in (line.rstrip() for line in expected.splitlines()):
        if not wanted.strip():
            continue
        while position < len(printed) and not text_matches(wanted, printed[position]):
            position += 1
        if position == len(printed):
            return f"no line matching {wanted!r} (after the lines matched before it)"
        position += 1
    return None


def json_values(text: str) -> list[Any]:
    """The JSON values in ``text``, one after another, separated by whitespace."""
    decoder, values, index = json.JSONDecoder(), [], 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index == len(text):
            return values
        value, index = decoder.raw_decode(text, index)
        values.append(value)


def json_problem(expected: Any, actual: Any, path: str = "$") -> str | None:
    """Where ``actual`` differs from ``expected`` by the rules of the module docstring; None when it matches."""
    if expected == ELLIPSIS:
        return None
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path}: expected an object, got {actual!r}"
        open_ended = expected.get(ELLIPSIS) == ELLIPSIS
        keys = [key for key in expected if not (open_ended and key == ELLIPSIS)]
        missing = [key for key in keys if key not in actual]
        extra = [] if open_ended else [key for key in actual if key not in expected]
        if missing or extra:
            return f"{path}: members missing {missing}, not shown {extra}"
        for key in keys:
            problem = json_problem(expected[key], actual[key], f"{path}.{key}")
            if problem:
                return problem
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{path}: expected a list, got {actual!r}"
        open_ended = bool(expected) and expected[-1] == ELLIPSIS
        items = expected[:-1] if open_ended else expected
        if len(actual) < len(items) or (not open_ended and len(actual) != len(items)):
            return f"{path}: expected {len(items)}{' or more' if open_ended else ''} items, got {len(actual)}"
        for index, item in enumerate(items):
            problem = json_problem(item, actual[index], f"{path}[{index}]")
            if problem:
                return problem
        return None
    if isinstance(expected, str) and ELLIPSIS in expected:
        if isinstance(actual, str) and text_matches(expected, actual):
            return None
        return f"{path}: {actual!r} does not match {expected!r}"
    if type(expected) is not type(actual) or expected != actual:
        return f"{path}: expected {expected!r}, got {actual!r}"
    return None


def json_output_problem(expected: str, stdout: str) -> str | None:
    wanted = json_values(expected)  # a page whose output block is not JSON fails here, as it should
    try:
        printed = json_values(stdout)
    except json.JSONDecodeError as error:
        return f"standard output is not a sequence of JSON values: {error}"
    if len(printed) != len(wanted):
        return f"expected {len(wanted)} JSON values, got {len(printed)}"
    for index, (one, other) in enumerate(zip(wanted, printed, strict=True)):
        problem = json_problem(one, other, f"value {index + 1}")
        if problem:
            return problem
    return None


# --- the server and the blocks ----------------------------------------------------------------------------


def clean_environment(home: Path) -> dict[str, str]:
    """The machine's environment as a new user's: a fresh home, nothing presenced or certificates set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_") and k not in UNSET}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != BIN.resolve()]
    env.update(
        PATH=os.pathsep.join(path),
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        PYTHONUNBUFFERED="1",
    )
    return env


class Server:
    """``presenced serve`` on a free port, its output collected in the background."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [str(BIN / "presenced"), *args, "--port", "0"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.address = ""
        self.lines: list[str] = []
        self._listening = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            found = re.search(r"listening on https?://(\S+)", line)
            if found and not self.address:
                self.address = found.group(1).rstrip("/")
                self._listening.set()
        self._listening.set()

    def wait(self, data_dir: Path) -> None:
        if not self._listening.wait(STARTUP_TIMEOUT) or not self.address:
            raise AssertionError(f"the server did not start (exit {self.process.poll()}):\n{self.log()}")
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not (data_dir / "tls" / "bundle.pem").exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def log(self) -> str:
        return "".join(self.lines[-40:])

    def stop(self) -> None:
        stop_process(self.process)
        self._reader.join(timeout=5)


#: Around each shell block: restore the page's variables, run, keep the new ones (and the environment).
SHELL_PROLOGUE = """\
set -euo pipefail
__docs_baseline=$(compgen -v)
if [ -f "$__DOCS_STATE" ]; then source "$__DOCS_STATE"; fi
"""
SHELL_EPILOGUE = """
for __docs_name in $(compgen -v); do
  case "$__docs_name" in
    BASH*|_|__docs_*|__DOCS_*|FUNCNAME|PIPESTATUS|GROUPS|DIRSTACK|RANDOM|SRANDOM|SECONDS|LINENO|EPOCH*) continue;;
  esac
  if grep -qxF -- "$__docs_name" <<<"$__docs_baseline"; then continue; fi
  declare -p "$__docs_name"
done >"$__DOCS_STATE"
env -0 >"$__DOCS_ENV"
"""


class Page:
    """One page's session: its server, the text of its blocks with the real address, and the shell's state."""

    def __init__(self, page: Path, workdir: Path) -> None:
        self.page, self.workdir = page, workdir
        self.home = workdir / "home"
        self.home.mkdir()
        self.env = clean_environment(self.home)
        self.state, self.env_file = workdir / "state.sh", workdir / "env"
        self.server = Server(serve_arguments(page), self.env)

    def __enter__(self) -> Page:
        try:
            self.server.wait(self.home / ".local" / "share" / "presenced")
        except BaseException:
            self.server.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def text(self, block: Block) -> str:
        return block.text.replace(DOCUMENTED_ADDRESS, self.server.address)

    def exported(self) -> dict[str, str]:
        if not self.env_file.exists():
            return dict(self.env)
        pairs = (item.partition("=") for item in self.env_file.read_text().split("\0") if item)
        return {name: value for name, _, value in pairs if not name.startswith("__DOCS_")}

    def run(self, block: Block) -> subprocess.CompletedProcess[str]:
        if block.language in SHELLS:
            script = self.workdir / f"block-{block.line}.sh"
            script.write_text(SHELL_PROLOGUE + self.text(block) + SHELL_EPILOGUE)
            command = ["bash", str(script)]
            env = {**self.env, "__DOCS_STATE": str(self.state), "__DOCS_ENV": str(self.env_file)}
        else:
            script = self.workdir / f"block-{block.line}.py"
            script.write_text(self.text(block))
            command, env = [sys.executable, str(script)], self.exported()
        return subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,  # a block that asks for input fails instead of waiting
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
            check=False,
        )

    def check(self, block: Block) -> None:
        started = time.monotonic()
        try:
            result = self.run(block)
        except subprocess.TimeoutExpired:
            self.fail(block, f"did not finish within {BLOCK_TIMEOUT} s", "", "")
        took = time.monotonic() - started
        if result.returncode != 0:
            self.fail(block, f"exited with status {result.returncode} after {took:.1f} s", result.stdout, result.stderr)
        if block.output is not None:
            expected = self.text(block.output)
            if block.output.language == "json":
                problem = json_output_problem(expected, result.stdout)
            else:
                problem = text_output_problem(expected, result.stdout)
            if problem:
                self.fail(block, f"printed something else than {block.output.where}: {problem}", result.stdout, "")

    def fail(self, block: Block, what: str, stdout: str, stderr: str) -> None:
        pytest.fail(
            f"{block.where} ({block.language}) {what}\n--- the block, as run ---\n{self.text(block)}"
            f"--- stdout ---\n{stdout}--- stderr ---\n{stderr}--- server log (last lines) ---\n{self.server.log()}",
            pytrace=False,
        )


#: The programs the examples use besides presenced and Python (Debian packages of the same names).
TOOLS = ("bash", "curl", "jq")


@pytest.fixture
def workdir() -> Iterator[Path]:
    # The pages run `.venv/bin/presenced`: it must be the installation under test.
    documented = ROOT / ".venv" / "bin" / "presenced"
    if documented.resolve() != (BIN / "presenced").resolve():
        pytest.fail(f"the examples run {documented}, but the tests run {BIN / 'presenced'}: run `python3 dev.py test`")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"the documentation's examples need {', '.join(missing)}: apt-get install {' '.join(missing)}")
    # Short and outside the repository: bash, the server and the examples all write under it.
    with tempfile.TemporaryDirectory(prefix="presenced-docs-") as name:
        yield Path(name)


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("page", [p for p in PAGES if runnable(p)], ids=page_id)
def test_examples_run_as_written(page: Path, workdir: Path) -> None:
    """Every marked block of the page runs, in order, and prints what the page says it prints."""
    with Page(page, workdir) as session:
        for block in runnable(page):
            session.check(block)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_examples_are_marked_as_the_runner_reads_them(page: Path) -> None:
    assert marking_problems(page) == []


def test_output_rules() -> None:
    """The comparisons the module docstring promises, both ways."""
    assert text_output_problem("a\n...c\n", "a\nb\nabc\n") is None
    assert text_output_problem("b\na\n", "a\nb\n") is not None
    expected = '{"id": "...", "when": "...T08:00:00Z", "list": [1, "..."], "...": "..."}'
    assert json_output_problem(expected, '{"id": 7, "when": "2027-01-01T08:00:00Z", "list": [1, 2], "x": 0}') is None
    assert json_output_problem(expected, '{"id": 7, "when": "2027-01-01T09:00:00Z", "list": [1]}') is not None
    assert json_output_problem('{"a": 1}', '{"a": 1, "b": 2}') is not None
    assert json_output_problem('{"a": 1}', '{"a": 1}\n{"a": 1}') is not None
    assert json_output_problem("[1, 2]", "[1, 2, 3]") is not None
    assert json_output_problem("200 {}", "200\n{}") is None
