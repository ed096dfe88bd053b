"""Content fingerprints for de-duplication: exact content hash, word shingles, MinHash, LSH bands.

Pure functions on numpy arrays, no services. Fingerprints are taken of the *English* text (the
original or its translation) so that a Spanish wire story and its English version can meet.

- Shingles are hashed n-grams (32-bit) of the *content words*: stop words, numbers and words of
  one or two letters are dropped, because they are what unrelated articles share and what a
  translation engine renders differently. Shingle sets are compared exactly (Jaccard) to verify
  candidates, so the LSH's estimate never decides alone.
- Each shingle also keeps where it first occurs, as a byte (0 = the start of the text, 255 = its
  end). A copy or an independent translation tells the story in the same order, so the words two
  texts share sit at about the same places; a follow-up article on the same event reuses the
  names and topic words elsewhere. ``overlap`` measures that order agreement next to Jaccard and
  containment.
- MinHash uses ``num_perm`` universal hash functions ``(a*x + b) mod (2^61 - 1)``, seeded, so two
  workers (or two runs) compute the same signature for the same text.
- LSH splits the signature into ``bands`` of ``rows``; two texts become candidates when any band
  is identical, which happens with probability ``1 - (1 - J^rows)^bands`` for Jaccard ``J``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt
from spacy.lang.en.stop_words import STOP_WORDS

Hashes = npt.NDArray[np.uint32]
Positions = npt.NDArray[np.uint8]

#: Positions are quantized to one byte: the text's length is split into this many places.
POSITION_STEPS = 256

_MERSENNE_61 = np.uint64((1 << 61) - 1)
_MAX_32 = np.uint64(0xFFFFFFFF)
_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Case-folded, NFKC-normalized word tokens: markup, punctuation and spacing do not count."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def content_hash(text: str) -> str:
    """Exact-duplicate key: equal for texts that differ only in case, spacing or punctuation."""
    return _hash_of_words(words(text))


def _hash_of_words(tokens: list[str]) -> str:
    return hashlib.sha256(" ".join(tokens).encode("utf-8")).hexdigest()[:32]


def content_words(text: str) -> list[str]:
    """The words that carry a story: no stop words, numbers or one- and two-letter words."""
    return _content(words(text))


def _content(tokens: list[str]) -> list[str]:
    return [w for w in tokens if len(w) > 2 and not w.isdigit() and w not in STOP_WORDS]


def shingles(text: str, size: int) -> Hashes:
    """Sorted, unique 32-bit hashes of the content-word ``size``-grams (fewer words: one)."""
    return _shingles_of(content_words(text), size)[0]


def _shingles_of(tokens: list[str], size: int) -> tuple[Hashes, Positions]:
    """The shingle set and, aligned with it, where each shingle first occurs (0-255)."""
    if not tokens:
        return np.empty(0, dtype=np.uint32), np.empty(0, dtype=np.uint8)
    grams = (
        [" ".join(tokens)]
        if len(tokens) < size
        else [" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)]
    )
    digests = b"".join(hashlib.blake2b(g.encode(), digest_size=4).digest() for g in grams)
    hashes, first = np.unique(
        np.frombuffer(digests, dtype="<u4").astype(np.uint32), return_index=True
    )
    return hashes, (first * POSITION_STEPS // len(grams)).astype(np.uint8)


@cache
def _permutations(num_perm: int, seed: int) -> tuple[npt.NDArray[np.uint64], ...]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 1 << 32, size=num_perm, dtype=np.uint64)
    b = rng.integers(0, 1 << 32, size=num_perm, dtype=np.uint64)
    return a, b


def minhash(hashes: Hashes, num_perm: int, seed: int) -> Hashes:
    """MinHash signature of a shingle set; an empty set gets the all-max signature."""
    if hashes.size == 0:
        return np.full(num_perm, 0xFFFFFFFF, dtype=np.uint32)
    a, b = _permutations(num_perm, seed)
    # a, x < 2^32, so a*x + b < 2^64: no overflow before the modulus.
    values = (np.outer(hashes.astype(np.uint64), a) + b) % _MERSENNE_61 & _MAX_32
    return values.min(axis=0).astype(np.uint32)


def band_keys(signature: Hashes, bands: int, rows: int) -> list[str]:
    """One key per LSH band: band number + hash of its rows (equal keys = candidate pair)."""
    if bands * rows > signature.size:
        raise ValueError(f"{bands} bands x {rows} rows need {bands * rows} permutations")
    digests = (
        hashlib.blake2b(signature[band * rows : (band + 1) * rows].tobytes(), digest_size=8)
        for band in range(bands)
    )
    return [f"{band}:{digest.hexdigest()}" for band, digest in enumerate(digests)]


def jaccard(a: Hashes, b: Hashes) -> float:
    """Exact Jaccard similarity of two sorted, unique shingle sets."""
    if a.size == 0 or b.size == 0:
        return 0.0
    common = np.intersect1d(a, b, assume_unique=True).size
    return common / (a.size + b.size - common)


@dataclass(frozen=True)
class Overlap:
    """How two shingle sets overlap: what copy verification looks at."""

    jaccard: float
    #: Share of the smaller set found in the larger: 1 for a truncated or excerpted copy.
    containment: float
    #: Share of the shared shingles first occurring at about the same relative place in both
    #: texts (0 when either text has no positions, e.g. a fingerprint stored before they were).
    order: float


def overlap(
    a: Hashes, a_positions: Positions, b: Hashes, b_positions: Positions, tolerance: float
) -> Overlap:
    """Jaccard, containment and order agreement of two sorted, unique shingle sets, from one
    intersection; positions count as "the same place" within ``tolerance`` of the text length."""
    if a.size == 0 or b.size == 0:
        return Overlap(0.0, 0.0, 0.0)
    common, in_a, in_b = np.intersect1d(a, b, assume_unique=True, return_indices=True)
    if common.size == 0:
        return Overlap(0.0, 0.0, 0.0)
    order = 0.0
    if a_positions.size == a.size and b_positions.size == b.size:
        apart = np.abs(a_positions[in_a].astype(np.int16) - b_positions[in_b].astype(np.int16))
        order = float(np.count_nonzero(apart <= tolerance * POSITION_STEPS)) / common.size
    return Overlap(
        jaccard=common.size / (a.size + b.size - common.size),
        containment=common.size / min(a.size, b.size),
        order=order,
    )


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """Chance that LSH makes a pair of this Jaccard similarity a candidate (for tuning/docs)."""
    return float(1 - (1 - similarity**rows) ** bands)


@dataclass(frozen=True)
class Fingerprint:
    content_hash: str
    shingles: Hashes
    positions: Positions  # aligned with ``shingles``: where each first occurs
    band_keys: tuple[str, ...]

    @classmethod
    def of(
        cls, text: str, *, shingle_size: int, num_perm: int, bands: int, rows: int, seed: int
    ) -> Fingerprint:
        tokens = words(text)  # tokenized once: the hash and the shingles both start here
        hashes, positions = _shingles_of(_content(tokens), shingle_size)
        signature = minhash(hashes, num_perm, seed)
        keys = tuple(band_keys(signature, bands, rows)) if hashes.size else ()
        return cls(_hash_of_words(tokens), hashes, positions, keys)
