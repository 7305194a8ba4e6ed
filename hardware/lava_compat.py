"""Make lava-nc 0.10 importable on Python >= 3.11, without touching site-packages.

lava-nc 0.10.0 declares Python <3.11. One module breaks on 3.11:
``lava/magma/compiler/var_model.py`` declares dataclass fields such as
``x: ByteEncoder = ByteEncoder()``. Python 3.11 refuses mutable (unhashable) dataclass defaults
with ``ValueError: mutable default ... use default_factory``. This module installs a
meta-path finder that serves that one module from its own source with each such default
rewritten to ``dataclasses.field(default_factory=ByteEncoder)`` — the same value, built per instance.

A second fix applies on every Python version:
``lava/magma/runtime/message_infrastructure/multiprocessing.py`` calls
``multiprocessing.set_start_method('fork')`` at import time, which raises ``RuntimeError: context
has already been set`` if anything in the process touched multiprocessing before (a tqdm progress
bar does). The call is served as ``set_start_method('fork', force=True)``: the same start method
lava needs, whoever asked first.

Everything else is untouched. On Python 3.10 only the second fix is installed.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys

PATCHED_MODULE = "lava.magma.compiler.var_model"
MP_MODULE = "lava.magma.runtime.message_infrastructure.multiprocessing"
_START_RE = re.compile(r"mp\.set_start_method\('fork'\)")
_DEFAULT_RE = re.compile(r"^(\s+\w+\s*:\s*ByteEncoder\s*=\s*)ByteEncoder\(\)\s*$", re.MULTILINE)


def patch_source(source: str) -> tuple[str, int]:
    """Rewrite ``name: ByteEncoder = ByteEncoder()`` fields to use ``default_factory``.

    Returns the new source and how many fields were rewritten.
    """
    # Inline import keeps line numbers (tracebacks) and the module's __future__ header intact.
    return _DEFAULT_RE.subn(r"\1__import__('dataclasses').field(default_factory=ByteEncoder)", source)


def patch_start_method(source: str) -> tuple[str, int]:
    """Make lava's import-time ``set_start_method('fork')`` tolerate an already-set context."""
    return _START_RE.subn("mp.set_start_method('fork', force=True)", source)


def _patches() -> dict:
    patches = {MP_MODULE: patch_start_method}
    if needed():
        patches[PATCHED_MODULE] = patch_source
    return patches


class _PatchingLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname):  # type: ignore[override]
        source = self.get_data(self.path).decode("utf-8")
        patched, _ = _patches()[fullname](source)
        return compile(patched, self.path, "exec", dont_inherit=True)


class _VarModelFinder(importlib.abc.MetaPathFinder):
    """Finds the patched lava modules with the path finder, then loads them patched."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _patches():
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return spec
        loader = _PatchingLoader(fullname, spec.origin)
        return importlib.util.spec_from_file_location(fullname, spec.origin, loader=loader)


def needed() -> bool:
    return sys.version_info >= (3, 11)


def install() -> bool:
    """Install the finder once. Returns True if the Python 3.11 dataclass fix is active."""
    if not any(isinstance(f, _VarModelFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _VarModelFinder())
    return needed()


def missing(module: str = "lava.magma") -> str | None:
    """Why ``module`` (lava-nc's ``lava.magma``, lava-dl's ``lava.lib.dl.netx``) cannot be imported here, in one
    line, or None when it can. Lava is the optional reference backend: lava-nc 0.10 / lava-dl 0.6 declare
    Python < 3.11 and numpy < 2, so they are installed only on the Python 3.11 stack."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return None
    package = "lava-dl" if module.startswith("lava.lib.dl") else "lava-nc"
    return (f"{package} is not installed in this Python {sys.version_info.major}.{sys.version_info.minor}: "
            "the Lava reference backend (--target lava/netx with --engine lava, --verify N, tune --engine lava) "
            "runs on the Python 3.11 stack (`make`, README 'Which Python gives what'); without it use the fast "
            "engine: --engine fast --verify 0")


def require(module: str = "lava.magma") -> None:
    """Raise :class:`~neurokd.errors.NeurokdError` (exit 2, one line) when ``module`` is not installed."""
    reason = missing(module)
    if reason is not None:
        from neurokd.errors import NeurokdError

        raise NeurokdError(reason)


def import_netx():
    """Import ``lava.lib.dl.netx`` without the line lava-dl prints on stdout at import time (its
    optional Prophesee dataset toolbox is missing, which netx never uses), nor torch's warning
    that no CUDA runtime exists (slayer loads torch's C++ extension helpers; netx runs on CPU)."""
    import contextlib
    import io
    import logging

    require("lava.lib.dl.netx")
    quiet = logging.getLogger("torch.utils.cpp_extension")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from lava.lib.dl import netx
    finally:
        quiet.setLevel(level)
    return netx
