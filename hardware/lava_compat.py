"""Make lava-nc 0.10 importable on Python >= 3.11, without touching site-packages.

lava-nc 0.10.0 declares Python <3.11. One module breaks on 3.11:
``lava/magma/compiler/var_model.py`` declares dataclass fields such as
``x: ByteEncoder = ByteEncoder()``. Python 3.11 refuses mutable (unhashable) dataclass defaults
with ``ValueError: mutable default ... use default_factory``. This module installs a
meta-path finder that serves that one module from its own source with each such default
rewritten to ``dataclasses.field(default_factory=ByteEncoder)`` — the same value, built per instance.

Everything else is untouched. On Python 3.10 (what lava supports) :func:`install` does nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys

PATCHED_MODULE = "lava.magma.compiler.var_model"
_DEFAULT_RE = re.compile(r"^(\s+\w+\s*:\s*ByteEncoder\s*=\s*)ByteEncoder\(\)\s*$", re.MULTILINE)


def patch_source(source: str) -> tuple[str, int]:
    """Rewrite ``name: ByteEncoder = ByteEncoder()`` fields to use ``default_factory``.

    Returns the new source and how many fields were rewritten.
    """
    # Inline import keeps line numbers (tracebacks) and the module's __future__ header intact.
    return _DEFAULT_RE.subn(r"\1__import__('dataclasses').field(default_factory=ByteEncoder)", source)


class _PatchingLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname):  # type: ignore[override]
        source = self.get_data(self.path).decode("utf-8")
        patched, _ = patch_source(source)
        return compile(patched, self.path, "exec", dont_inherit=True)


class _VarModelFinder(importlib.abc.MetaPathFinder):
    """Finds ``lava.magma.compiler.var_model`` with the path finder, then loads it patched."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != PATCHED_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return spec
        loader = _PatchingLoader(fullname, spec.origin)
        return importlib.util.spec_from_file_location(fullname, spec.origin, loader=loader)


def needed() -> bool:
    return sys.version_info >= (3, 11)


def install() -> bool:
    """Install the finder once (Python >= 3.11 only). Returns True if it is active."""
    if not needed():
        return False
    if not any(isinstance(f, _VarModelFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _VarModelFinder())
    return True
