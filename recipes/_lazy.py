"""A package's names imported on first use (PEP 562), so that importing the package loads nothing heavy."""

import importlib


def lazy_exports(namespace, exports, submodules=()):
    """The `__getattr__` and `__dir__` of a package whose names are imported from their modules on first use.

    Example, in a package's `__init__.py`:

    ```python
    _EXPORTS = {"fit": "recipes.training"}
    __all__ = sorted(_EXPORTS)
    __getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
    ```

    Args:
        namespace: The package's `globals()`: a name, once imported, is kept there, so that later look-ups
            skip `__getattr__`.
        exports: Dict from each exported name to the module that defines it.
        submodules: Names of submodules exported as themselves (`recipes.augment`).
    """
    package = namespace["__name__"]
    names = sorted([*exports, *submodules])

    def __getattr__(name):
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return names

    return __getattr__, __dir__
