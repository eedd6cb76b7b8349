"""bench.metrics: edit distance, CER/WER, multiset word P/R/F1, NED, folding, percentiles (hand-computed cases)."""

from __future__ import annotations

import math

import pytest

from bench.metrics import (
    PRF,
    alnum_fold,
    error_rate,
    levenshtein,
    multiset_prf,
    normalize_bengali,
    normalized_edit_distance,
    percentile,
    ratio,
    sum_prf,
    word_prf,
)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("", "", 0),
        ("abc", "", 3),
        ("", "abcd", 4),
        ("abc", "abc", 0),
        ("kitten", "sitting", 3),  # k->s, e->i, +g
        ("flaw", "lawn", 2),  # -f, +n
        ("abc", "acb", 2),  # no transpositions in plain Levenshtein
        ("intention", "execution", 5),
        ("AB", "ab", 2),  # case matters
    ],
)
def test_levenshtein_strings(a: str, b: str, expected: int) -> None:
    assert levenshtein(a, b) == expected
    assert levenshtein(b, a) == expected


def test_levenshtein_word_lists() -> None:
    assert levenshtein(["the", "cat", "sat"], ["the", "hat", "sat", "down"]) == 2
    assert levenshtein([], ["a", "b"]) == 2


def test_cer_is_micro_averaged() -> None:
    # 1 edit over 4 chars, 2 edits over 6 chars -> 3 / 10, not the mean of 0.25 and 0.333.
    rate = error_rate([("abcx", "abcd"), ("foo", "foobar")], "char")
    assert (rate.edits, rate.reference) == (4, 10)
    rate = error_rate([("abcd", "abcd"), ("fooxar", "foobar")], "char")
    assert (rate.edits, rate.reference) == (1, 10)
    assert rate.rate == pytest.approx(0.1)


def test_wer_counts_word_edits() -> None:
    rate = error_rate([("the cat  sat", "the hat sat down"), ("", "one two")], "word")
    # pair 1: hat->cat sub, +down = 2 over 4 words; pair 2: 2 deletions over 2 words.
    assert (rate.edits, rate.reference) == (4, 6)


def test_error_rate_empty_reference() -> None:
    assert error_rate([], "char").rate == 0.0
    assert error_rate([("", "")], "char").rate == 0.0
    assert math.isinf(error_rate([("x", "")], "char").rate)
    with pytest.raises(ValueError, match="unit"):
        error_rate([], "line")


def test_multiset_match_with_duplicates() -> None:
    # predicted: A A A B; expected: A A C -> matched 2 (A twice), P = 2/4, R = 2/3, F1 = 2*0.5*0.667/1.1667 = 4/7.
    prf = multiset_prf(["A", "A", "A", "B"], ["A", "A", "C"])
    assert (prf.matched, prf.predicted, prf.expected) == (2, 4, 3)
    assert prf.precision == pytest.approx(0.5)
    assert prf.recall == pytest.approx(2 / 3)
    assert prf.f1 == pytest.approx(4 / 7)


def test_empty_predictions_and_ground_truth() -> None:
    nothing = multiset_prf([], ["A", "B"])
    assert (nothing.precision, nothing.recall, nothing.f1) == (0.0, 0.0, 0.0)
    no_gt = multiset_prf(["A"], [])
    assert (no_gt.precision, no_gt.recall, no_gt.f1) == (0.0, 0.0, 0.0)
    assert multiset_prf([], []).f1 == 0.0


def test_word_prf_case_folding() -> None:
    exact = word_prf("Total  80.90\nCash", "TOTAL 80.90 CASH", case_blind=False)
    assert (exact.matched, exact.predicted, exact.expected) == (1, 3, 3)
    blind = word_prf("Total  80.90\nCash", "TOTAL 80.90 CASH", case_blind=True)
    assert (blind.matched, blind.predicted, blind.expected) == (3, 3, 3)
    assert blind.f1 == pytest.approx(1.0)


def test_sum_prf_is_a_micro_average() -> None:
    # Doc 1: 1/1 matched; doc 2: 0 of 3 predicted, 1 expected. Summed: matched 1, predicted 4, expected 2.
    total = sum_prf([multiset_prf(["a"], ["a"]), multiset_prf(["x", "y", "z"], ["b"])])
    assert (total.matched, total.predicted, total.expected) == (1, 4, 2)
    assert total.precision == pytest.approx(0.25)
    assert total.recall == pytest.approx(0.5)
    assert total.f1 == pytest.approx(1 / 3)
    assert sum_prf([]) == PRF(0, 0, 0)


def test_prf_as_dict_is_in_percent() -> None:
    shown = PRF(1, 2, 4).as_dict()
    assert shown["precision"] == pytest.approx(50.0)
    assert shown["recall"] == pytest.approx(25.0)
    assert shown["f1"] == pytest.approx(100 / 3)


def test_normalized_edit_distance() -> None:
    assert normalized_edit_distance("", "") == 0.0
    assert normalized_edit_distance("abc", "") == 1.0
    assert normalized_edit_distance("PARKlNG", "PARKING") == pytest.approx(1 / 7)
    assert normalized_edit_distance("ab", "abcd") == pytest.approx(0.5)


def test_alnum_fold() -> None:
    assert alnum_fold("Don't!") == "dont"
    assert alnum_fold("HOTEL 24/7") == "hotel247"
    assert alnum_fold("café") == "caf"  # only ASCII letters and digits survive
    assert alnum_fold("...") == ""


def test_normalize_bengali_nfc_danda_and_whitespace() -> None:
    decomposed = "\u0995\u09c7\u09be"  # KA + E sign + AA sign, canonically equal to KA + O sign
    assert normalize_bengali(decomposed) == "\u0995\u09cb"
    assert normalize_bengali("\u09df") == normalize_bengali("\u09af\u09bc")  # YYA is composition-excluded
    assert normalize_bengali("আমি |  তুমি।\n") == "আমি । তুমি।"
    assert normalize_bengali("|") == normalize_bengali("।")


def test_bengali_cer_after_normalisation() -> None:
    gt = normalize_bengali("কো | খ\n")
    pred = normalize_bengali("\u0995\u09c7\u09be । খ")
    assert error_rate([(pred, gt)], "char").edits == 0
    assert error_rate([(normalize_bengali("কো । গ"), gt)], "char").edits == 1


def test_percentile_linear_interpolation() -> None:
    values = [10.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 95) == pytest.approx(8.8)  # 4 + (10 - 4) * 0.8, as numpy
    assert percentile(values, 25) == 2.0
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 10.0
    assert percentile([7.0], 95) == 7.0
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="q"):
        percentile(values, 101)


def test_ratio() -> None:
    assert ratio(1, 4) == 25.0
    assert ratio(0, 0) == 0.0
