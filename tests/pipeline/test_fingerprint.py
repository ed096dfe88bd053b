"""Fingerprints: what counts as the same text, and how well MinHash/LSH track exact Jaccard."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.fingerprint import (
    Fingerprint,
    band_keys,
    candidate_probability,
    content_hash,
    content_words,
    jaccard,
    minhash,
    overlap,
    shingles,
)

TEXT = (
    "The central bank raised interest rates on Thursday, citing persistent inflation in "
    "services and a tight labour market across the euro area."
)


def test_content_hash_ignores_case_spacing_and_punctuation_but_not_words() -> None:
    assert content_hash(TEXT) == content_hash(TEXT.upper().replace(" ", "  ").replace(",", ""))
    assert content_hash(TEXT) != content_hash(TEXT.replace("Thursday", "Friday"))


def test_content_words_drop_stop_words_numbers_and_short_words() -> None:
    assert content_words("The 3 big banks of EU met in Paris") == ["big", "banks", "met", "paris"]


def test_shingles_are_sorted_unique_word_ngrams() -> None:
    one = shingles("markets markets rally rally", 1)
    assert one.size == 2 and np.all(np.diff(one.astype(np.int64)) > 0)
    assert shingles("markets rally strongly", 2).size == 2
    assert shingles("markets", 3).size == 1  # shorter than a shingle: one shingle of all words
    assert shingles("the of and", 1).size == 0


def of(text: str) -> Fingerprint:
    return Fingerprint.of(text, shingle_size=1, num_perm=128, bands=64, rows=2, seed=1)


def compare(a: Fingerprint, b: Fingerprint, tolerance: float = 0.1) -> tuple[float, ...]:
    found = overlap(a.shingles, a.positions, b.shingles, b.positions, tolerance)
    return found.jaccard, found.containment, found.order


def test_exact_similarities() -> None:
    a, b = shingles("alpha beta gamma delta", 1), shingles("alpha beta gamma epsilon", 1)
    assert jaccard(a, b) == pytest.approx(3 / 5)
    assert jaccard(a, np.empty(0, dtype=np.uint32)) == 0.0
    assert compare(of("alpha beta gamma delta"), of("alpha beta gamma epsilon"))[:2] == (
        pytest.approx(3 / 5),
        pytest.approx(3 / 4),
    )
    assert compare(of("alpha beta gamma delta"), of("alpha beta"))[1] == 1.0  # truncated
    assert compare(of("alpha beta"), of("")) == (0.0, 0.0, 0.0)
    assert compare(of("alpha beta"), of("gamma delta")) == (0.0, 0.0, 0.0)


def test_positions_are_where_each_shingle_first_occurs_as_a_byte() -> None:
    fingerprint = of("alpha beta alpha gamma")  # four words: places 0, 64, 128, 192 of 256
    where = dict(zip(fingerprint.shingles.tolist(), fingerprint.positions.tolist(), strict=True))
    assert fingerprint.positions.dtype == np.uint8 and len(where) == 3
    assert sorted(where.values()) == [0, 64, 192]  # the second "alpha" does not move the first
    assert where[shingles("gamma", 1)[0]] == 192


def test_order_agreement_tells_the_same_order_from_the_same_words_elsewhere() -> None:
    story = [f"word{i}" for i in range(40)]
    reworded = [w if i % 4 else f"other{i}" for i, w in enumerate(story)]  # a translation
    shuffled = story[20:] + story[:20]  # the same words told in another order
    same_order = compare(of(" ".join(story)), of(" ".join(reworded)))
    other_order = compare(of(" ".join(story)), of(" ".join(shuffled)))
    assert same_order[2] == 1.0 and same_order[0] == pytest.approx(30 / 50)
    assert other_order[0] == 1.0 and other_order[2] == 0.0
    # a three-word lead moves every word by less than 10% of the text, but not by under 1%
    shifted = ["breaking", "news", "update", *story]
    assert compare(of(" ".join(story)), of(" ".join(shifted)), tolerance=0.1)[2] == 1.0
    assert compare(of(" ".join(story)), of(" ".join(shifted)), tolerance=0.01)[2] < 0.2


def test_a_fingerprint_without_positions_has_no_order_agreement() -> None:
    a, b = of(TEXT), of(TEXT + " Analysts had expected the move.")
    empty = np.empty(0, dtype=np.uint8)
    found = overlap(a.shingles, empty, b.shingles, b.positions, 0.1)
    assert found.order == 0.0 and found.containment == 1.0


def test_minhash_is_deterministic_and_estimates_jaccard() -> None:
    words_a = [f"word{i}" for i in range(300)]
    words_b = words_a[100:] + [f"other{i}" for i in range(100)]  # Jaccard 200/400 = 0.5
    a, b = shingles(" ".join(words_a), 1), shingles(" ".join(words_b), 1)
    sig_a, sig_b = minhash(a, 256, 7), minhash(b, 256, 7)
    assert np.array_equal(sig_a, minhash(a, 256, 7))
    assert not np.array_equal(sig_a, minhash(a, 256, 8))
    assert float(np.mean(sig_a == sig_b)) == pytest.approx(jaccard(a, b), abs=0.1)


def test_band_keys_need_enough_permutations() -> None:
    signature = minhash(shingles(TEXT, 1), 64, 1)
    assert len(band_keys(signature, 32, 2)) == 32
    with pytest.raises(ValueError, match="need 66 permutations"):
        band_keys(signature, 33, 2)


def test_candidate_probability_is_the_lsh_s_curve() -> None:
    low, mid, high = (candidate_probability(s, 64, 2) for s in (0.05, 0.2, 0.5))
    assert low < 0.2 < 0.9 < mid < high


def test_near_copies_share_bands_and_unrelated_texts_do_not() -> None:
    copy = of(TEXT + " Analysts had expected the move.")
    other = of("Heavy snowfall closed mountain passes and delayed trains in the Alps overnight.")
    assert set(of(TEXT).band_keys) & set(copy.band_keys)
    assert not set(of(TEXT).band_keys) & set(other.band_keys)
    assert of("").band_keys == ()
