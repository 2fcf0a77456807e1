"""The code's own rules, checked with the tests: layering, lint and types."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "presenced"
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def test_layers_follow_the_import_contracts() -> None:
    """Imports point down the layers, and the rules import no framework, database or clock (import-linter)."""
    result = run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    """ruff finds nothing in src, tests and bench."""
    result = run(str(BIN / "ruff"), "check", "src", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean_on_src() -> None:
    """mypy --strict finds nothing in src."""
    result = run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_package_the_service_imports_is_a_runtime_dependency() -> None:
    """Each third-party module imported under src/ comes from [project].dependencies (or what they bring),
    so a plain install, without the test extras, can run the service."""
    import ast
    import tomllib
    from importlib.metadata import PackageNotFoundError, packages_distributions, requires

    from packaging.requirements import Requirement

    def name(requirement: Requirement) -> str:
        return requirement.name.lower().replace("_", "-")

    todo = [Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    available: set[str] = set()
    while todo:
        requirement = todo.pop()
        if name(requirement) in available:
            continue
        available.add(name(requirement))
        try:
            needs = [Requirement(r) for r in requires(requirement.name) or []]
        except PackageNotFoundError:
            continue
        for need in needs:
            extras = requirement.extras or {""}
            if need.marker is None or any(need.marker.evaluate({"extra": extra}) for extra in extras):
                todo.append(need)
    distributions = packages_distributions()
    missing = set()
    for path in (ROOT / "src" / "presenced").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for module in names:
                top = module.split(".")[0]
                if top == "presenced" or top in sys.stdlib_module_names:
                    continue
                providers = {d.lower().replace("_", "-") for d in distributions.get(top, [])}
                if not providers & available:
                    missing.add(f"{top} ({path.relative_to(ROOT)})")
    assert not missing, f"imported but not a runtime dependency: {sorted(missing)}"


def _retry_loops(tree: ast.AST) -> list[int]:
    """Lines of ``while True`` loops that catch ``Exception`` and go round again: background-job loops."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.While) and isinstance(node.test, ast.Constant) and node.test.value is True):
            continue
        handlers = [h for n in ast.walk(node) if isinstance(n, ast.Try) for h in n.handlers]
        if any(isinstance(h.type, ast.Name) and h.type.id == "Exception" for h in handlers):
            waits = [
                n for n in ast.walk(node)
                if isinstance(n, ast.Attribute) and n.attr in {"sleep", "wait_for"}
            ]  # fmt: skip
            if waits:
                found.append(node.lineno)
    return found


def test_background_jobs_share_one_loop() -> None:
    """Every "do a round, log a failure, wait, again" loop is ``services.loops.repeat``: no module writes its own."""
    helper = SRC / "services" / "loops.py"
    assert _retry_loops(ast.parse(helper.read_text())), "the helper itself is not recognised"
    own = {
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path != helper and _retry_loops(ast.parse(path.read_text()))
    }
    # The Redis subscriber reconnects rather than repeating a round of work: a loop of another kind.
    assert own == {"notify/fanout.py"}


def test_real_time_is_read_in_one_place() -> None:
    """Only ``presenced.clock`` reads the wall clock; everything else asks it (or a ``Clock``)."""
    readings = ("datetime.now(", "datetime.utcnow(", "date.today(", "time.time(")
    found = [
        f"{path.relative_to(SRC)}: {reading}"
        for path in SRC.rglob("*.py")
        if path != SRC / "clock.py"
        for reading in readings
        if reading in path.read_text()
    ]
    assert found == []


def test_the_code_cites_only_this_repositorys_documents() -> None:
    """Comments name the rules' pages in docs/ (and the section, when they quote one), never a document
    that is not in the repository; every page and section they name exists."""
    import re

    citation = re.compile(r'docs/([\w-]+\.md)(?:[,:]?\s*\(?((?:"[^"\n]+"(?:,? and |, |\s*)?)+))?')
    missing = []
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        assert "§" not in text, f"{path.relative_to(SRC)} cites a section of a document that is not here"
        for page, quoted in citation.findall(" ".join(text.split())):
            document = ROOT / "docs" / page
            if not document.exists():
                missing.append(f"{path.relative_to(SRC)}: docs/{page}")
                continue
            headings = {line.lstrip("#").strip() for line in document.read_text().splitlines() if line.startswith("#")}
            for section in re.findall(r'"([^"]+)"', quoted or ""):
                if not any(h == section or h.startswith(f"{section} (") for h in headings):
                    missing.append(f'{path.relative_to(SRC)}: docs/{page} "{section}"')
    assert missing == []


def test_every_exception_presenced_defines_has_one_root() -> None:
    """Each exception class of the package is a ``PresencedError``: a message, an HTTP status and a wire
    code, set when it is made."""
    import importlib
    import inspect
    import pkgutil

    import presenced
    from presenced.errors import PresencedError

    others = []
    for module_info in pkgutil.walk_packages(presenced.__path__, "presenced."):
        if ".migrations" in module_info.name or module_info.name == "presenced.__main__":
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            defined_here = inspect.isclass(value) and value.__module__ == module.__name__
            if defined_here and issubclass(value, BaseException) and not issubclass(value, PresencedError):
                others.append(f"{module.__name__}.{name}")
    assert others == []


def test_handlers_get_their_services_typed_from_one_helper() -> None:
    """Only ``presenced.wiring`` touches the application's state; handlers ask ``services_of`` (typed)."""
    touching = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path != SRC / "wiring.py" and "app.state" in path.read_text()
    ]
    assert touching == []


def test_the_adapters_reach_the_store_only_through_services() -> None:
    """No ``.store`` (or ``_store``) attribute is read in the Graph API, the portal, the command line or the app
    composition: what they need of stored data, a service gives them, with its rules and authorization applied.
    (Importing the store package is the import contract's to forbid.)"""
    adapters = [SRC / "app.py", *(p for name in ("api", "web", "cli") for p in (SRC / name).rglob("*.py"))]
    found = [
        f"{path.relative_to(SRC)}:{node.lineno}"
        for path in adapters
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in {"store", "_store", "identity_store"}
    ]
    assert found == []
