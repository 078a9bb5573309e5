"""What the launcher knows of each service without starting it."""

from __future__ import annotations

import functools
import importlib
import inspect

from servicekit.settings import ServiceSettings


@functools.cache
def settings_class(service: str) -> type[ServiceSettings]:
    """The service's settings class: the ServiceSettings subclass its settings module
    defines (the one its composition root builds)."""
    mod = importlib.import_module(f"{service}_service.settings")
    for obj in vars(mod).values():
        if (inspect.isclass(obj) and issubclass(obj, ServiceSettings)
                and obj is not ServiceSettings and obj.__module__ == mod.__name__):
            return obj
    raise LookupError(f"no settings class in {service}_service.settings")
