"""Search query parsing and highlighting, without a database."""

import pytest

from chat.errors import ChatError
from chat.search import Hit, highlight, search_terms


def kinds(query: str) -> list[tuple[str, str]]:
    return [(t.text, t.kind) for t in search_terms(query)]


def test_each_word_gets_the_index_that_can_find_it():
    assert kinds("release 会議 QA 打ち合わせ a") == [
        ("release", "trigram"),
        ("会議", "bigram"),
        ("QA", "word"),
        ("打ち合わせ", "trigram"),
        ("a", "filter"),
    ]
    assert kinds('"ship it" ship') == [("ship it", "trigram"), ("ship", "trigram")]
    assert kinds("release release") == [("release", "trigram")]


@pytest.mark.parametrize(
    "query",
    ["", "   ", "a", "会", "... !!", "a b c", "x" * 201, "nul\x00byte", " ".join("w" * 3 + str(n) for n in range(9))],
)
def test_queries_that_cannot_be_searched_are_refused_with_a_sentence(query):
    with pytest.raises(ChatError) as info:
        search_terms(query)
    assert info.value.code == "invalid_request" and info.value.detail.endswith(".")


def test_highlight_marks_every_match_case_insensitively_and_merges_overlaps():
    terms = search_terms("deploy ploy")
    segments = highlight("Deploy now, redeploy later", terms)
    assert [(s.text, s.match) for s in segments] == [
        ("Deploy", True),
        (" now, re", False),
        ("deploy", True),
        (" later", False),
    ]


def test_a_two_letter_word_is_marked_only_as_a_whole_word():
    segments = highlight("qatar QA qa-less", search_terms("qa"))
    assert [s.text for s in segments if s.match] == ["QA", "qa"]


def test_a_long_text_is_cut_around_the_first_match():
    text = "x" * 1000 + " needle " + "y" * 1000
    segments = highlight(text, search_terms("needle"), width=100)
    assert segments[0].text == "…" and segments[-1].text == "…"
    assert [s.text for s in segments if s.match] == ["needle"]
    assert sum(len(s.text) for s in segments) <= 102


def test_the_html_highlight_escapes_the_text():
    hit = Hit(
        position=1,
        room="r",
        seq=1,
        id="x",
        username="u",
        ts=None,  # type: ignore[arg-type]
        text="",
        edited=False,
        segments=highlight('<img src=x onerror="alert(1)"> & 会議', search_terms("会議")),
    )
    assert hit.highlight == "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; <mark>会議</mark>"
