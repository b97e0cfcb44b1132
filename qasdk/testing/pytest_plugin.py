"""The ``scripted_model`` fixture, registered as a ``pytest11`` entry point.

Import-light on purpose: pytest loads it in every session, so the server
module is imported only when a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from qasdk.testing.model import ScriptedModel

__all__ = ["scripted_model"]


@pytest.fixture
def scripted_model() -> Iterator[ScriptedModel]:
    """A started :class:`~qasdk.testing.ScriptedModel` with an empty script, stopped afterwards.

    Script it with ``scripted_model.push(...)`` or set ``scripted_model.rule``.
    """
    from qasdk.testing.model import ScriptedModel

    with ScriptedModel() as model:
        yield model
