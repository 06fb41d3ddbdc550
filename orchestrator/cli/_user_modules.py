"""``orchestrator --specialists MODULE``: import the user's own modules before a command runs,
so the specialists they register (``register_specialist``) are there without packaging them
as an entry point."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from orchestrator._errors import UsageError

__all__ = ["import_user_modules"]


def import_user_modules(names: Sequence[str]) -> None:
    """Import each of `names`: a module name found from the current folder or on the path
    (``my_specialists``, ``pkg.mod``), or a ``.py`` file. Errors name the option and the module."""
    # A console script's path does not hold the current folder; a user means the one they are in.
    here = str(Path.cwd())
    if here not in sys.path:
        sys.path.insert(0, here)
    for name in names:
        try:
            if name.endswith(".py"):
                _import_file(Path(name))
            else:
                importlib.import_module(name)
        except UsageError:
            raise
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.split(".")[0] == exc.name.split(".")[0]:
                raise UsageError(
                    f"--specialists {name}: no module {exc.name!r} in {here} or on the Python "
                    "path; give a module name or a .py file"
                ) from None
            raise UsageError(f"--specialists {name}: importing it failed: {exc}") from None
        except SyntaxError as exc:
            raise UsageError(
                f"--specialists {name}: {exc.filename}:{exc.lineno}: {exc.msg}"
            ) from None
        except Exception as exc:
            raise UsageError(
                f"--specialists {name}: importing it failed: {type(exc).__name__}: {exc}"
            ) from None


def _import_file(path: Path) -> None:
    if not path.is_file():
        raise UsageError(f"--specialists {path}: no such file")
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"--specialists {path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
