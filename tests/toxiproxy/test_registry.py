"""The server's toxic behaviours line up with the shared catalog of toxic types."""

from __future__ import annotations

import random

import pytest

from toxics import catalog
from toxics.server.toxics import REGISTRY
from toxics.server.toxics.slicer import Slicer


def test_every_catalog_type_has_a_behaviour() -> None:
    assert set(REGISTRY) == set(catalog.REGISTRY)


@pytest.mark.parametrize("name", sorted(catalog.REGISTRY))
def test_attribute_names_agree_and_round_trip(name: str) -> None:
    kind = catalog.REGISTRY[name]
    values = kind.parse_attributes({a.name: a.minimum + 3 for a in kind.attributes}, strict=True)
    assert REGISTRY[name].from_attributes(values).attributes() == values


class _Stub:
    rng = random.Random(3)


@pytest.mark.parametrize("average, variation", [(1, 0), (10, 0), (10, 9), (10, 50), (1000, 10)])
def test_slicer_pieces_cover_the_chunk(average: int, variation: int) -> None:
    sizes = list(Slicer(average, variation, 0).sizes(12_345, _Stub()))  # type: ignore[arg-type]
    assert sum(sizes) == 12_345 and min(sizes) >= 1
    assert max(sizes[:-1] or [average]) <= average + variation
