import pytest

from digitalriver.models import WebhookEvent
from tests.conftest import make_event

pytestmark = pytest.mark.django_db


def test_event_is_stored_and_ignored(post_event):
    response = post_event(make_event("something.unknown"))
    assert response.status_code == 202, response.content
    event = WebhookEvent.objects.get()
    assert event.state == WebhookEvent.State.IGNORED
