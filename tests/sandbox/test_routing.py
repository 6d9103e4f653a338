import importlib

import pytest
from django.test import override_settings
from django.urls import Resolver404, clear_url_caches, resolve

import config.urls


@pytest.fixture
def reload_urls():
    yield lambda: (clear_url_caches(), importlib.reload(config.urls))
    clear_url_caches()
    importlib.reload(config.urls)


def test_nothing_is_routed_under_sandbox_when_it_is_off(client, transactional_db, reload_urls):
    assert resolve("/sandbox/api/skus")
    with override_settings(DR_SANDBOX=False):
        reload_urls()
        for path in ("/sandbox/", "/sandbox/api/skus", "/sandbox/control/", "/sandbox/actions/ship/"):
            with pytest.raises(Resolver404):
                resolve(path)
            assert client.get(path).status_code == 404
    reload_urls()
    assert resolve("/sandbox/api/skus")
