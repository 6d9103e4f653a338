"""Lists of tables of millions of rows (core.admin_scale): a count that stops at a cap with the
planner's estimate past it, page links that do not reach for the end, and a field's values read by
skipping through its index."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core import admin_scale
from core.admin_scale import EstimatedCountPaginator, distinct_values
from digitalriver.models import ApiCall, Instruction

pytestmark = pytest.mark.django_db


def make_calls(count: int, **fields) -> None:
    ApiCall.objects.bulk_create(
        ApiCall(method="GET", path=f"/orders/{number}", status=200, **fields) for number in range(count)
    )


def paginator(per_page: int = 2) -> EstimatedCountPaginator:
    return EstimatedCountPaginator(ApiCall.objects.order_by("-started_at", "-id"), per_page)


def test_a_list_within_the_cap_is_counted_exactly():
    make_calls(5)
    pages = paginator()
    assert pages.count == 5 and not pages.estimated
    assert list(pages.get_elided_page_range(1)) == [1, 2, 3]


@pytest.mark.postgres
def test_past_the_cap_the_count_is_the_planners_estimate_never_a_count_of_the_table(monkeypatch):
    monkeypatch.setattr(admin_scale, "EXACT_COUNT_UP_TO", 3)
    make_calls(8)
    pages = paginator()
    with CaptureQueriesContext(connection) as captured:
        count = pages.count
    counts = [query["sql"] for query in captured if "COUNT(" in query["sql"]]
    assert len(counts) == 1 and "LIMIT 4" in counts[0]
    assert any(query["sql"].startswith("EXPLAIN") for query in captured)
    assert pages.estimated and count >= 4
    with CaptureQueriesContext(connection) as captured:
        assert pages.count == count  # asked once
    assert not captured


def test_past_the_cap_without_a_planner_to_ask_it_counts_them_all(monkeypatch):
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL estimates")
    monkeypatch.setattr(admin_scale, "EXACT_COUNT_UP_TO", 3)
    make_calls(8)
    pages = paginator()
    assert pages.count == 8 and not pages.estimated


def test_an_estimated_list_links_to_the_pages_near_this_one_only():
    pages = paginator(per_page=50)
    pages.__dict__["count"] = 10_000_000  # what an estimate would say
    pages.estimated = True
    assert list(pages.get_elided_page_range(1)) == [1, 2, 3, 4, pages.ELLIPSIS]
    assert list(pages.get_elided_page_range(1000)) == [1, 2, pages.ELLIPSIS, *range(997, 1004), pages.ELLIPSIS]


def test_distinct_values_are_each_value_once_in_order():
    make_calls(3, error_code="not_found")
    make_calls(2, error_code="")
    make_calls(1, error_code="conflict")
    assert distinct_values(ApiCall, "error_code") == ["", "conflict", "not_found"]
    assert distinct_values(ApiCall, "status") == [200]


def test_distinct_values_need_a_column_of_the_table():
    with pytest.raises(ValueError, match="not a column"):
        distinct_values(Instruction, "attempt_set")
