"""The middleware chain: an editable list of layers, each ``layer(ctx, call_next) -> result``.

Both stacks (enqueue and worker) are chains. A chain is data, so applications and fault
tests can insert a layer before or after a named one, or remove one, without touching
library code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, Protocol, TypeVar

C = TypeVar("C")
R = TypeVar("R")
C_contra = TypeVar("C_contra", contravariant=True)


class Layer(Protocol[C, R]):
    """One step of a stack; call ``call_next(ctx)`` to pass control inwards."""

    def __call__(self, ctx: C, call_next: Callable[[C], R]) -> R: ...


LayerRef = type | str


def _matches(layer: object, ref: LayerRef) -> bool:
    if isinstance(ref, str):
        return type(layer).__name__ == ref
    return isinstance(layer, ref)


class Chain(Generic[C, R]):
    """An ordered list of layers, outermost first."""

    def __init__(self, layers: list[Layer[C, R]] | None = None) -> None:
        self._layers: list[Layer[C, R]] = list(layers or [])

    def __iter__(self) -> Iterator[Layer[C, R]]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def names(self) -> list[str]:
        return [type(layer).__name__ for layer in self._layers]

    def _index(self, ref: LayerRef) -> int:
        for index, layer in enumerate(self._layers):
            if _matches(layer, ref):
                return index
        raise KeyError(f"no layer {ref!r} in chain {self.names()}")

    def add(self, layer: Layer[C, R]) -> None:
        """Append as the innermost layer."""
        self._layers.append(layer)

    def prepend(self, layer: Layer[C, R]) -> None:
        """Insert as the outermost layer."""
        self._layers.insert(0, layer)

    def insert_before(self, ref: LayerRef, layer: Layer[C, R]) -> None:
        self._layers.insert(self._index(ref), layer)

    def insert_after(self, ref: LayerRef, layer: Layer[C, R]) -> None:
        self._layers.insert(self._index(ref) + 1, layer)

    def remove(self, ref: LayerRef) -> None:
        del self._layers[self._index(ref)]

    def get(self, ref: LayerRef) -> Layer[C, R]:
        return self._layers[self._index(ref)]

    def invoke(self, ctx: C, terminal: Callable[[C], R]) -> R:
        """Run ``ctx`` through every layer, then ``terminal`` at the centre."""

        def step(index: int) -> Callable[[C], R]:
            if index == len(layers):
                return terminal
            layer = layers[index]
            inner = step(index + 1)
            return lambda c: layer(c, inner)

        layers = list(self._layers)
        return step(0)(ctx)
