from __future__ import annotations

import pytest
from channels.layers import channel_layers
from django.test import Client

from tests import factories


@pytest.fixture
def alice_client(db) -> Client:
    client = Client()
    client.force_login(factories.alice())
    return client


@pytest.fixture
def bob_client(db) -> Client:
    client = Client()
    client.force_login(factories.bob())
    return client


@pytest.fixture
def fresh_channel_layer():
    """Each live test runs its own event loop: no group or queue may outlive it."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()
