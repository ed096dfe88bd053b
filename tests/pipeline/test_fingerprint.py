"""Fingerprints: what counts as the same text, and how well MinHash/LSH track exact Jaccard."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.fingerprint import (
    Fingerprint,
    band_keys,
    candidate_probability,
    containment,
    content_hash,
    content_words,
    jaccard,
    minhash,
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


def test_exact_similarities() -> None:
    a, b = shingles("alpha beta gamma delta", 1), shingles("alpha beta gamma epsilon", 1)
    assert jaccard(a, b) == pytest.approx(3 / 5)
    assert containment(a, shingles("alpha beta", 1)) == 1.0
    assert jaccard(a, np.empty(0, dtype=np.uint32)) == 0.0


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
    def of(text: str) -> Fingerprint:
        return Fingerprint.of(text, shingle_size=1, num_perm=128, bands=64, rows=2, seed=1)

    copy = of(TEXT + " Analysts had expected the move.")
    other = of("Heavy snowfall closed mountain passes and delayed trains in the Alps overnight.")
    assert set(of(TEXT).band_keys) & set(copy.band_keys)
    assert not set(of(TEXT).band_keys) & set(other.band_keys)
    assert of("").band_keys == ()
