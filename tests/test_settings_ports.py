"""Every local port has one variable and one default, in activations/settings.py."""

from __future__ import annotations

import pytest

from activations import settings
from activations.destinations.config import sandbox_url
from activations.messaging.feedback import event_feed


def test_each_port_comes_from_its_variable_else_its_default():
    assert (settings.sandbox_port({}), settings.smtp_port({}), settings.serve_port({}),
            settings.dagster_port({})) == (8765, 8025, 8766, 3000)
    env = {"ATTIVA_SANDBOX_PORT": "9765", "ATTIVA_DAGSTER_PORT": "3100"}
    assert settings.sandbox_port(env) == 9765 and settings.dagster_port(env) == 3100
    assert sandbox_url("hubspot", env) == "http://127.0.0.1:9765/hubspot"
    assert event_feed(env).url is None  # no default feed: the product knows no ESP's address


def test_a_port_that_is_no_number_names_its_variable():
    with pytest.raises(ValueError, match=r"ATTIVA_DAGSTER_PORT='three thousand': expected a port number"):
        settings.dagster_port({"ATTIVA_DAGSTER_PORT": "three thousand"})
