"""Synopsis embeddings with the real packaged all-MiniLM-L6-v2 model."""

from pathlib import Path

import numpy as np
import pytest

from otaku.features.text import (
    SentenceTransformerEncoder,
    embed_synopses,
    is_placeholder,
    split_sentences,
)


class CountingEncoder:
    """The real encoder, counting how many texts it was asked to embed."""

    def __init__(self, inner: SentenceTransformerEncoder) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += len(texts)
        return self.inner.encode(texts)


@pytest.fixture(scope="module")
def encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder()


def test_placeholders_and_sentences() -> None:
    assert is_placeholder("")
    assert is_placeholder("   ")
    assert is_placeholder("No synopsis information has been added to this title. Help improve")
    assert not is_placeholder("Spike hunts bounties.")
    assert split_sentences("One. Two! Three?  Four") == ["One.", "Two!", "Three?", "Four"]


def test_embeddings_mean_of_sentences_and_cache(
    encoder: SentenceTransformerEncoder, tmp_path: Path
) -> None:
    texts = [
        "A bounty hunter travels through space. He chases criminals.",
        "",
        "No synopsis information has been added to this title.",
        "A girl joins a volleyball team.",
    ]
    counting = CountingEncoder(encoder)
    first = embed_synopses(texts, counting, tmp_path)
    assert first.shape == (4, 384)
    assert counting.calls == 3  # two sentences + one sentence; placeholders skipped
    assert not first[1].any() and not first[2].any()
    np.testing.assert_allclose(np.linalg.norm(first[[0, 3]], axis=1), 1.0, atol=1e-5)
    sentences = encoder.encode(["A bounty hunter travels through space.", "He chases criminals."])
    mean = sentences.mean(axis=0)
    np.testing.assert_allclose(first[0], mean / np.linalg.norm(mean), atol=1e-5)
    again = embed_synopses(texts, counting, tmp_path)
    assert counting.calls == 3  # read back from the cache, nothing re-encoded
    np.testing.assert_array_equal(first, again)
    changed = embed_synopses([*texts[:3], "Something else entirely."], counting, tmp_path)
    assert counting.calls == 6 and not np.array_equal(changed, first)


def test_similar_texts_are_closer(encoder: SentenceTransformerEncoder) -> None:
    vectors = embed_synopses(
        [
            "Pirates sail the sea looking for treasure.",
            "A crew of pirates searches the ocean for a legendary treasure.",
            "A high school cooking club competes in a baking contest.",
        ],
        encoder,
    )
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
