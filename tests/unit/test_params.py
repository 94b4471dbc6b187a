"""The shared query-parameter checks (config/params.py), without a request."""

from datetime import UTC, datetime

import pytest
from django.http import QueryDict

from config.params import BadParam, int_clean, moment_clean, param_int, param_moment, query_clean, text_clean


@pytest.mark.parametrize(
    "value, named",
    [
        ("a\x00b", "control characters"),
        ("\x1b[31m", "control characters"),
        ("\ud800", "lone surrogates"),
        ("x" * 1001, "at most 1000"),
    ],
)
def test_text_clean_refuses_what_no_filter_means(value, named):
    with pytest.raises(BadParam) as info:
        text_clean("room", value)
    assert info.value.name == "room" and info.value.detail.startswith("room ") and named in info.value.detail


def test_text_clean_strips_and_keeps_unicode():
    assert text_clean("room", "  雑談 ") == "雑談"


@pytest.mark.parametrize("value", ["abc", "1.5", "NaN", "1e3", str(10**30), "-1", "", "١٢"])
def test_int_clean_refuses_anything_but_a_bounded_whole_number(value):
    with pytest.raises(BadParam) as info:
        int_clean("before", value)
    assert info.value.detail.startswith("before must be a whole number from 0 to")


def test_param_int_takes_the_last_of_repeated_values_and_none_when_blank():
    assert param_int(QueryDict("limit=5&limit=7"), "limit") == 7
    assert param_int(QueryDict("limit="), "limit") is None
    assert param_int(QueryDict(""), "limit") is None
    assert int_clean("year", "-3", minimum=-5, maximum=5) == -3


@pytest.mark.parametrize(
    "value, named",
    [
        ("2024-13-45", "not a real date"),
        ("2024-02-30T10:00", "not a real date"),
        ("2024-02-29T24:00", "not a real date"),
        ("yesterday", "must be a date"),
        ("0001-01-01T00:00+01:00", "out of the range"),
        ("9999-12-31T23:59-01:00", "out of the range"),
    ],
)
def test_moment_clean_refuses_impossible_dates_by_name(value, named):
    with pytest.raises(BadParam) as info:
        moment_clean("created_from", value)
    assert info.value.detail.startswith("created_from") and named in info.value.detail


def test_moment_clean_takes_a_day_as_its_first_or_last_instant(settings):
    settings.TIME_ZONE = "UTC"
    assert moment_clean("d", "2024-02-29") == datetime(2024, 2, 29, tzinfo=UTC)
    assert moment_clean("d", "2024-02-29", end=True) == datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
    assert param_moment(QueryDict("as_of=2024-02-29T10:00"), "as_of", bare_date=False) == datetime(
        2024, 2, 29, 10, tzinfo=UTC
    )


def test_query_clean_checks_every_name_and_value():
    query_clean(QueryDict("q=hello&room=lobby"))
    with pytest.raises(BadParam):
        query_clean(QueryDict("q=ok&q=%00"))
    with pytest.raises(BadParam):
        query_clean(QueryDict("%00=1"))
