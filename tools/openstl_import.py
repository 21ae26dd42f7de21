"""Load one OpenSTL model class from a checkout of chengtan9907/OpenSTL, for the fixture
scripts tools/make_openstl_*_fixtures.py (run once, with torch, never in CI).

OpenSTL's packages import every model of theirs on import (and their dependencies); only the
named module files and the model file are loaded here, by path, under their own package
names, with what `from openstl.modules import ...` expects on the openstl.modules package.
"""
import importlib
import importlib.util
import os
import sys
import types


def load_openstl_model(checkout, module_names, model_file, class_name):
    """The class `class_name` of openstl/models/<model_file>.py, after loading
    openstl/modules/<name>.py for each of module_names."""
    pkg = os.path.join(checkout, "openstl")
    for name, folder in (("openstl", pkg), ("openstl.modules", os.path.join(pkg, "modules")),
                         ("openstl.models", os.path.join(pkg, "models"))):
        module = types.ModuleType(name)
        module.__path__ = [folder]
        sys.modules[name] = module
    for part in module_names:
        loaded = importlib.import_module(f"openstl.modules.{part}")
        for key, value in vars(loaded).items():
            if not key.startswith("_"):
                setattr(sys.modules["openstl.modules"], key, value)
    spec = importlib.util.spec_from_file_location(f"openstl.models.{model_file}",
                                                  os.path.join(pkg, "models", f"{model_file}.py"))
    model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model)
    return getattr(model, class_name)
