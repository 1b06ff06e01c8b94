"""Names a package exports from its modules, imported on first use (PEP 562).

A stage package's ``__init__`` lists where its public names live; nothing is imported until a name is used, so
importing one light module of a stage (the torch-free runtime, the decision rule) never loads the heavy ones.
"""

from __future__ import annotations

import importlib
import sys


def lazy_exports(module: str, table: dict[str, str]):
    """``__getattr__`` and ``__dir__`` for `module` from {submodule: "Name Other ..."}; submodules are relative to
    `module` (".predictor") or absolute ("action_rec.inference.predictor")."""
    where = {name: sub for sub, names in table.items() for name in names.split()}

    def __getattr__(name: str):
        sub = where.get(name)
        if sub is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return getattr(importlib.import_module(sub, module), name)

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[module])) | set(where))

    return __getattr__, __dir__
