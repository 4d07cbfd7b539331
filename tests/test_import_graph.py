"""The package's imports point one way, and the Tinker path needs no torch.

Read from the source with `ast` (every import statement, at any depth, `if TYPE_CHECKING:`
ones included), so a wrong-way import fails here before anyone notices it at run time:
- no layer below the loop (data, provider, evals, policies, tracking, report) imports the
  configuration, the loop, the CLI, or anything that itself imports the configuration: each
  takes typed settings of its own, which the loop builds from the configuration (loop/settings.py);
- the lowest layers (data, provider, evals) never import tracking either;
- no import cycle exists even counting imports inside functions, so none is dodged by one.
  The package root is the one exception by design: its lazy exports import the API on
  first use, and every module implicitly runs the root's `__init__` (no edge is drawn for that).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = "inspect_tinker"
REPO = Path(__file__).resolve().parents[1]
# Module name -> file; inspect_tinker.demo lives among the examples (pyproject.toml maps it).
FOLDERS = {ROOT: REPO / "src" / ROOT, f"{ROOT}.demo": REPO / "examples" / "demo"}
BELOW_LOOP = ("data", "provider", "evals", "policies", "tracking", "report")
NEVER_FROM_BELOW_LOOP = (f"{ROOT}.config", f"{ROOT}.cli", f"{ROOT}.loop")
LOWEST = ("data", "provider", "evals")
NEVER_FROM_LOWEST = (f"{ROOT}.tracking",)


def modules() -> dict[str, Path]:
    found = {}
    for name, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([name, *parts])] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported module of this package, line) for every import statement in `path`."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in known else base, node.lineno))
    return [(m, line) for m, line in found if m in known]


def graph() -> dict[str, set[str]]:
    """Module -> the modules importing it runs: what it imports, and their parent packages (an
    import runs a package's `__init__` first), except the root and the importer's own packages
    (already running when it is imported)."""
    known = modules()
    edges: dict[str, set[str]] = {m: set() for m in known}
    for name, path in known.items():
        own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
        for target, _ in imports(name, path, set(known)):
            parts = target.split(".")
            parents = {".".join(parts[:i]) for i in range(2, len(parts))}
            edges[name] |= (parents - own) | ({target} - {name})
    return edges


def reaches(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def wrong_way_imports(layers: tuple[str, ...], never: tuple[str, ...], nor_what_imports_config: bool) -> list[str]:
    """`file:line imports module` for each import, in a module of `layers`, of a module under `never`
    (or, with `nor_what_imports_config`, of the configuration or of anything that imports it)."""
    known = modules()
    edges = graph()
    above = {m for m in known if f"{ROOT}.config" in reaches(edges, m)} if nor_what_imports_config else set()
    wrong = []
    for name, path in known.items():
        if name.split(".")[1:2] and name.split(".")[1] in layers:
            for target, line in imports(name, path, set(known)):
                if target in above or target.startswith(never):
                    wrong.append(f"{path.relative_to(REPO)}:{line} imports {target}")
    return sorted(set(wrong))


def test_no_layer_below_the_loop_imports_config_the_loop_the_cli_or_what_imports_config():
    wrong = wrong_way_imports(BELOW_LOOP, NEVER_FROM_BELOW_LOOP, nor_what_imports_config=True)
    assert not wrong, "wrong-way imports:\n" + "\n".join(wrong)


def test_data_provider_and_evals_never_import_tracking():
    wrong = wrong_way_imports(LOWEST, NEVER_FROM_LOWEST, nor_what_imports_config=False)
    assert not wrong, "wrong-way imports:\n" + "\n".join(wrong)


def test_no_import_cycle_even_through_imports_inside_functions():
    edges = graph()
    edges[ROOT] = set()  # the root's lazy exports (see the module docstring)
    cycles = sorted({" -> ".join(cycle(edges, m)) for m in edges if m in reaches(edges, m)})
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def cycle(edges: dict[str, set[str]], start: str) -> list[str]:
    """One shortest path from `start` back to itself."""
    paths, seen = [[start]], set()
    while paths:
        path = paths.pop(0)
        for nxt in sorted(edges[path[-1]]):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                paths.append([*path, nxt])
    return []


def test_the_modules_a_tinker_run_needs_load_without_the_local_extra():
    # Imported as `inspect-tinker run` with `backend: tinker` imports them; the fresh-install test
    # (test_packaging.py) runs the commands where torch is not installed at all.
    code = (
        "import json, sys\n"
        "import inspect_tinker.cli, inspect_tinker.config, inspect_tinker.loop.session, inspect_tinker.loop.evaluation\n"
        "import inspect_tinker.loop.eval_tasks, inspect_tinker.loop.tune, inspect_tinker.tracking.export, inspect_tinker._registry\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert not set(json.loads(done.stdout)) & {"torch", "peft", "accelerate", "gguf"}
