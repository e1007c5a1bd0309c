"""Find a participant's agent class from ``--agent``.

Three forms, as a CARLA participant would expect plus two explicit ones:

- ``path/to/agent.py`` — the class named by the module's ``get_entry_point()``;
- ``path/to/agent.py:ClassName``;
- ``package.module:ClassName`` — an importable module.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from lbcloud.domain.errors import InputError


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise InputError(f"--agent: no such file {path}")
    name = f"lbcloud_agent_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"--agent: {path} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise InputError(f"--agent: importing {path} failed: {type(err).__name__}: {err}") from err
    return module


def load_agent_class(reference: str) -> type:
    """The agent class ``reference`` names; raises InputError with a one-line reason."""
    location, _, class_name = reference.rpartition(":") if ":" in reference else (reference, "", "")
    if location.endswith(".py") or (not class_name and reference.endswith(".py")):
        module = _load_file(Path(location or reference))
    elif class_name:
        try:
            module = importlib.import_module(location)
        except Exception as err:
            raise InputError(f"--agent: cannot import module {location!r}: {type(err).__name__}: {err}") from err
    else:
        raise InputError(f"--agent {reference!r}: expected path/to/agent.py[:Class] or package.module:Class")
    if not class_name:
        entry = getattr(module, "get_entry_point", None)
        if not callable(entry):
            raise InputError(f"--agent: {reference} has no get_entry_point(); name the class as {reference}:ClassName")
        class_name = str(entry())
    found = getattr(module, class_name, None)
    if not isinstance(found, type):
        raise InputError(f"--agent: {reference} has no class {class_name!r}")
    return found
