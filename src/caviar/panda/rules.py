"""The hyperparameters' rules (:mod:`caviar.nn.spec`) for the controls, without torch.

Why this module: ``caviar panda set lr=3e-3`` must start in well under a second, and the rules it
checks live in ``caviar/nn/spec.py``, which needs only :mod:`caviar.core`. Importing it the usual
way runs ``caviar/nn/__init__.py`` first, which imports the engine and torch (1 to 4 s). So a
process that has not imported :mod:`caviar.nn` loads ``spec.py`` on its own, under its own name
``caviar.nn.spec``: if the process imports :mod:`caviar.nn` later, its ``from caviar.nn.spec
import ...`` finds this very module, so there is one ``MemberSpec`` class, never two. A process
that has imported :mod:`caviar.nn` (the trainer, the tests) gets the module the usual way.

(A ``caviar/nn/__init__.py`` that imports its names on first use, as ``caviar/__init__.py`` does,
would make this module unnecessary.)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

_NAME = "caviar.nn.spec"


def spec_module() -> ModuleType:
    """:mod:`caviar.nn.spec`, imported without :mod:`caviar.nn` unless that is here already."""
    if _NAME in sys.modules or "caviar.nn" in sys.modules:
        return importlib.import_module(_NAME)
    path = Path(__file__).resolve().parent.parent / "nn" / "spec.py"
    found = importlib.util.spec_from_file_location(_NAME, path)
    if found is None or found.loader is None:
        raise ImportError(f"caviar: cannot load {path}", name=_NAME, path=str(path))
    module = importlib.util.module_from_spec(found)
    sys.modules[_NAME] = module  # before it runs: its dataclasses look themselves up there
    try:
        found.loader.exec_module(module)
    except BaseException:
        del sys.modules[_NAME]
        raise
    return module


def spec_names(*names: str) -> tuple[Any, ...]:
    """``names`` from :mod:`caviar.nn.spec` (see :func:`spec_module`)."""
    module = spec_module()
    return tuple(getattr(module, name) for name in names)
