"""One registry for every set of named things a user chooses from, with one error for a wrong name.

Model families, data sets, recipes, pruning criteria, baselines, study arms, derive methods and
early-stopping rules are each a :class:`Registry`: ``register(name, value)`` (or a decorator),
``get(name)``, ``names()`` and ``name in registry``. A name no entry answers to raises
:class:`~archsearch.core.errors.UnknownNameError` (or the registry's subclass of it) in one form::

    unknown data set 'imagenet'; expected one of cifar10, cifar100, digits, mnist5k

This module imports nothing heavy (no numpy, networkx or torch), and registering a name never
imports what it names: an entry may be a lazy reference, ``"package.module:attr"`` or a factory
called without arguments, resolved on the first :meth:`Registry.get` and kept.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Generic, Iterator, TypeVar, overload

from .errors import UnknownNameError

__all__ = ["Registry", "UnknownNameError"]

T = TypeVar("T")
_MISSING: Any = object()


class _Lazy:
    """A reference resolved on first use: ``"package.module:attr"`` or a factory ``() -> value``."""

    __slots__ = ("ref",)

    def __init__(self, ref: str | Callable[[], Any]) -> None:
        if isinstance(ref, str):
            module, sep, attr = ref.partition(":")
            if not (module and sep and attr):
                raise ValueError(f"lazy reference {ref!r}: expected 'package.module:attr'")
        elif not callable(ref):
            raise TypeError(f"lazy reference {ref!r}: expected 'package.module:attr' or a factory")
        self.ref = ref

    def resolve(self) -> Any:
        if not isinstance(self.ref, str):
            return self.ref()
        module, _, attr = self.ref.partition(":")
        value: Any = importlib.import_module(module)
        for part in attr.split("."):
            value = getattr(value, part)
        return value

    def __repr__(self) -> str:
        return f"<lazy {self.ref!r}>" if isinstance(self.ref, str) else f"<lazy {self.ref!r}()>"


class Registry(Generic[T]):
    """Named values of one kind (``kind`` names it in errors: ``"data set"``, ``"baseline"``).

    ``error`` is the class :meth:`get` raises, an :class:`UnknownNameError` subclass that may also
    derive from the kind's own error (``UnknownDataSetError`` is a ``DataError`` too). ``sort``
    lists names alphabetically; ``sort=False`` keeps the order they were registered in (for closed
    sets whose order means something, such as the arms of a study table). Registering a name again
    replaces its entry.
    """

    def __init__(self, kind: str, *, error: type[UnknownNameError] = UnknownNameError, sort: bool = True) -> None:
        self.kind = kind
        self.error = error
        self.sort = sort
        self._entries: dict[str, Any] = {}

    # -- registering -----------------------------------------------------------------------------
    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, value: T) -> T: ...

    def register(self, name: str, value: Any = _MISSING) -> Any:
        """Register ``value`` as ``name`` and return it; without a value, a decorator that does."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"{self.kind} name {name!r}: expected a non-empty string")
        if value is _MISSING:
            return lambda v: self.register(name, v)
        self._entries[name] = value
        return value

    def register_lazy(self, name: str, ref: str | Callable[[], T]) -> None:
        """Register ``name`` without importing its value: ``"package.module:attr"`` or a factory."""
        self.register(name, _Lazy(ref))

    def unregister(self, name: str) -> None:
        """Forget ``name`` (a test's or a notebook's entry); an unknown name is the one error."""
        del self._entries[self.check(name)]

    # -- looking up ------------------------------------------------------------------------------
    def get(self, name: str, *, where: str | None = None) -> T:
        """The value of ``name`` (a lazy entry is resolved now, once); ``where`` prefixes the error
        with what was being read, e.g. ``"--families"`` or ``"prune.criterion"``."""
        value = self._entries[self.check(name, where=where)]
        if isinstance(value, _Lazy):
            value = self._entries[name] = value.resolve()
        return value

    __getitem__ = get

    def check(self, name: Any, *, where: str | None = None) -> str:
        """``name`` if it is registered (a lazy entry stays unresolved), else the one error."""
        if name not in self:
            raise self.unknown(name, where=where)
        return name

    def unknown(self, name: Any, *, where: str | None = None) -> UnknownNameError:
        """The error for a name this registry does not hold, in the one form."""
        return self.error(f"unknown {self.kind} {name!r}; expected one of {', '.join(self.names())}", field=where)

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._entries)) if self.sort else tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"
