"""The package layout keeps its dependency direction: read from the import statements of every module
(function-level imports included), and checked once at run time in a fresh interpreter.

- the training side (``neurokd``'s data, models, losses, loop) never imports Lava or the hardware side;
- ``hardware/network`` (the network form) imports no engine, format, cost or report code;
- ``hardware/engines`` import no cost, format or report code; ``hardware/cost`` no engine or report;
- ``hardware/placement`` imports network and cost code only: no engine run (Lava, the engines), no format,
  no report (reports draw placements, never the other way round);
- nothing in ``hardware/`` imports the training side's models or loop;
- ``neurokd.api`` is the top: only the package's ``__init__``, the command line (``cli``, ``commands/``) and
  ``__main__`` import it; no module below it (``tuning``, ``deploy``, ``training``, the exporters, the
  hardware side) does, directly or through an API name from ``neurokd``;
- ``import neurokd`` (the public API) loads neither torch nor Lava.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ["training.py", "losses.py", "activity.py", "config.py", "distributed.py", "studies.py", "fileio.py",
            "resources.py", "errors.py", "data", "models"]


def _modules(*parts: str) -> list[Path]:
    files = []
    for part in parts:
        path = ROOT / part
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def _imports(path: Path) -> set[str]:
    """Every module name an ``import`` or ``from ... import`` in the file names (relative ones resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{path}: relative import; neurokd uses absolute imports")
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _offenders(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return _offenders_at(ROOT, files, forbidden)


def _offenders_at(root: Path, files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for f in files:
        for name in sorted(_imports(f)):
            if any(name == p or name.startswith(p + ".") for p in forbidden):
                bad.append(f"{f.relative_to(root)} imports {name}")
    return bad


def test_the_checker_sees_imports_inside_functions(tmp_path):
    """The checker itself: a function-level import of Lava is found (so a rule can fail)."""
    f = tmp_path / "m.py"
    f.write_text("def run():\n    from lava.magma.core.process.process import AbstractProcess\n")
    assert "lava.magma.core.process.process" in _imports(f)


def test_training_side_imports_no_lava_and_no_hardware():
    files = _modules(*(f"neurokd/{p}" for p in TRAINING))
    assert len(files) > 10
    assert _offenders(files, ("lava", "neurokd.hardware", "neurokd.deploy")) == []


def test_network_form_imports_no_engine_format_cost_or_report():
    files = _modules("hardware/network")
    assert {f.name for f in files} >= {"ir.py", "nir_semantics.py", "quantize.py"}
    assert _offenders(files, ("lava", "torch", "neurokd.hardware.engines", "neurokd.hardware.formats",
                              "neurokd.hardware.cost", "neurokd.hardware.reports")) == []


def test_engines_import_no_cost_format_or_report_code():
    files = _modules("hardware/engines")
    assert {f.name for f in files} >= {"lava_backend.py", "fastsim.py", "result.py"}
    assert _offenders(files, ("neurokd.hardware.cost", "neurokd.hardware.formats", "neurokd.hardware.reports")) == []


def test_cost_imports_no_engine_or_report():
    assert _offenders(_modules("hardware/cost"), ("lava", "torch", "neurokd.hardware.engines",
                                                  "neurokd.hardware.formats", "neurokd.hardware.reports")) == []


def test_placement_imports_no_engine_run_and_no_report():
    files = _modules("hardware/placement")
    assert {f.name for f in files} >= {"chips.py", "place.py", "cost.py", "sanafe.py"}
    assert _offenders(files, ("lava", "torch", "neurokd.hardware.engines", "neurokd.hardware.formats",
                              "neurokd.hardware.reports", "neurokd.deploy", "neurokd.commands")) == []


def test_hardware_never_imports_the_training_side():
    assert _offenders(_modules("hardware"), ("neurokd.models", "neurokd.training", "neurokd.studies",
                                             "neurokd.losses", "neurokd.api", "neurokd.deploy")) == []


ABOVE_API = {"neurokd/__init__.py", "neurokd/__main__.py", "neurokd/api.py", "neurokd/cli.py"}


def _below_api() -> list[Path]:
    return [f for f in _modules("neurokd", "exporters", "hardware")
            if str(f.relative_to(ROOT)) not in ABOVE_API and "commands" not in f.relative_to(ROOT).parts]


def test_nothing_below_the_api_imports_it():
    """One direction: the API calls the library (``tuning``, ``deploy``, ...), never the other way round;
    ``from neurokd import report`` counts too (it loads ``neurokd.api``)."""
    import neurokd.api

    files = _below_api()
    assert {"tuning.py", "deploy.py", "training.py", "to_nir.py", "summary.py"} <= {f.name for f in files}
    forbidden = ("neurokd.api", *(f"neurokd.{name}" for name in neurokd.api.__all__))
    assert _offenders(files, forbidden) == []


def test_the_api_rule_fails_on_a_function_level_import_of_the_api(tmp_path):
    """The rule can fail: the pattern tuning once had (``report`` imported inside a function) is caught."""
    import neurokd.api

    f = tmp_path / "tuning.py"
    f.write_text("def finalize():\n    from neurokd.api import report as make_report\n"
                 "def other():\n    from neurokd import tune\n")
    forbidden = ("neurokd.api", *(f"neurokd.{name}" for name in neurokd.api.__all__))
    bad = [line.split(" imports ")[1] for line in _offenders_at(tmp_path, [f], forbidden)]
    assert bad == ["neurokd.api", "neurokd.api.report", "neurokd.tune"]


def test_hardware_modules_live_in_their_stage_folders_and_old_paths_are_gone():
    top = {f.name for f in (ROOT / "hardware").glob("*.py")}
    assert top == {"__init__.py", "lava_compat.py"}
    for old in ("ir", "quantize", "fastsim", "lava_backend", "counting", "energy", "report", "netx", "figures",
                "model_card", "result", "nir_semantics", "netx_reader"):
        assert importlib.util.find_spec(f"neurokd.hardware.{old}") is None, old
    for old in ("neurokd.train", "neurokd.study"):
        assert importlib.util.find_spec(old) is None, old


def test_at_run_time_the_training_side_and_the_api_load_no_lava():
    code = (
        "import sys\n"
        "import neurokd\n"
        "assert 'torch' not in sys.modules, 'import neurokd loaded torch'\n"
        "import neurokd.training, neurokd.studies, neurokd.losses, neurokd.activity, neurokd.models, neurokd.data\n"
        "from neurokd.models import build_student\n"
        "bad = sorted(m for m in sys.modules if m == 'lava' or m.startswith(('lava.', 'neurokd.hardware')))\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def _api_commands() -> list[str]:
    from neurokd.cli import COMMANDS

    return [name for name in COMMANDS if name != "data"]      # `data` is dataset tooling, not an API call


@pytest.mark.parametrize("command", _api_commands())
def test_commands_call_the_public_api(command):
    """Each command module parses options and calls ``neurokd.api``; no library work lives in it."""
    from neurokd.cli import COMMANDS

    module = COMMANDS[command][0]
    path = ROOT / (module.replace(".", "/") + ".py")
    assert "neurokd.api" in _imports(path), f"{path.name} does not call neurokd.api"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    defs = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    heavy = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
             and n.module and n.module.startswith(("neurokd.hardware", "neurokd.training", "neurokd.exporters.from_nir"))]
    assert heavy == [], f"{path.name} imports library internals: {[n.module for n in heavy]} (defs: {defs})"


def test_no_module_shadows_an_api_call():
    """``import neurokd.X`` rebinds the attribute ``neurokd.X`` to the module: an API call must not share
    its name with a module of the package (``neurokd.train`` the function vs ``neurokd/train.py``)."""
    import neurokd

    clashes = [name for name in neurokd.__all__
               if (ROOT / "neurokd" / f"{name}.py").exists() or (ROOT / "neurokd" / name).is_dir()]
    assert clashes == [], f"modules named like API calls: {clashes}; rename the module"
