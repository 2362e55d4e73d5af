from __future__ import annotations

import pytest

from routing.providers import REGISTRY, get_adapter
from routing.providers.base import Adapter


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_registered_kind_loads_one_shared_adapter(kind: str) -> None:
    adapter = get_adapter(kind)

    assert isinstance(adapter, Adapter)
    assert adapter.kind == kind
    assert get_adapter(kind) is adapter


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(KeyError) as info:
        get_adapter("bedrock")

    assert "bedrock" in str(info.value)
    assert "anthropic" in str(info.value)
