"""The one plugin registry type: conditions and instructions are both kinds registered here.

A registry maps a kind name (``http``, ``poll``) to the plugin that implements it. It refuses a
second plugin for a kind unless asked to replace it (a plugin shadowing a built-in by accident
is a bug), and it answers an unknown kind with an error that lists the known ones. What a
plugin must provide is the caller's protocol; the registry only needs ``kind``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Kinded(Protocol):
    kind: str


P = TypeVar("P", bound=Kinded)


class Registry(Generic[P]):
    """Plugins of one family (``what``: "condition", "instruction"), by kind.

    Args:
        what: the family's name, used in messages.
        unknown: builds the error raised for a kind nothing is registered for, from the kind
            and the sorted known kinds (each family has its own error class).
    """

    def __init__(self, what: str, unknown: Callable[[str, tuple[str, ...]], Exception]):
        self.what = what
        self._unknown = unknown
        self._plugins: dict[str, P] = {}
        self._lock = threading.Lock()

    def register(self, plugin: P, *, replace: bool = False) -> P:
        """Make ``plugin`` the one for ``plugin.kind``; returns it (usable as a decorator
        on instances).

        Raises:
            ValueError: another plugin has the kind and ``replace`` is false.
        """
        with self._lock:
            current = self._plugins.get(plugin.kind)
            if current is not None and current is not plugin and not replace:
                raise ValueError(
                    f"a {self.what} plugin for kind {plugin.kind!r} is already registered "
                    f"({type(current).__qualname__}); pass replace=True to override it")
            self._plugins[plugin.kind] = plugin
        return plugin

    def unregister(self, kind: str) -> None:
        """Remove the plugin for ``kind``, if any (tests that register fakes)."""
        with self._lock:
            self._plugins.pop(kind, None)

    def get(self, kind: str) -> P:
        """The plugin for ``kind``.

        Raises:
            the family's unknown-kind error, naming the known kinds.
        """
        try:
            return self._plugins[kind]
        except KeyError:
            raise self._unknown(kind, self.kinds()) from None

    def kinds(self) -> tuple[str, ...]:
        """The registered kinds, sorted."""
        return tuple(sorted(self._plugins))

    def plugins(self) -> tuple[P, ...]:
        """The registered plugins, in kind order."""
        return tuple(self._plugins[kind] for kind in self.kinds())
