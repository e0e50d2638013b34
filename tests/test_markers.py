"""The one citation-marker grammar (assistant/markers.py) that the answerers, the LLM check and
the UI share."""

from __future__ import annotations

from assistant import markers


def test_groups_name_every_passage_they_list() -> None:
    assert markers.cited_numbers("A [1]. B [2, 3]; C [4-6] and [2–3] [1; 7].") == [
        1,
        2,
        3,
        4,
        5,
        6,
        7,
    ]


def test_a_huge_or_backwards_range_names_only_its_ends() -> None:
    assert markers.group_numbers("1-99999999") == [1, 99999999]
    assert markers.group_numbers("9-2") == [9, 2]


def test_non_ascii_digits_and_words_are_not_markers() -> None:
    assert markers.cited_numbers("[٣] [a] [1a] [ ]") == []


def test_defang_turns_article_brackets_into_parentheses() -> None:
    assert markers.defang("as table [7] and [1, 2] show") == "as table (7) and (1, 2) show"


def test_renderers_see_only_canonical_single_markers() -> None:
    assert [m[1] for m in markers.CANONICAL.finditer("x [1][12] [1, 2] [1234]")] == ["1", "12"]
