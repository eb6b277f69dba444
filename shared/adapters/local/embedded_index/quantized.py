"""An int8 first pass for exact k-NN: every row scored from one byte per dimension, the few that can still be
among the best scored again in float32.

Why: a query over 100k x 384 float32 rows reads 150 MB; on two cores that is ~13 ms of memory traffic, the
largest cost of a search. The same rows as int8 codes are 38 MB, and onnxruntime's ``MatMulInteger`` (MLAS's
uint8 x int8 kernels, already shipped for the builtin embedder) scores them in ~2 ms.

Codes: each row ``v`` (unit length) is stored as ``round(v / s)`` with its own scale ``s = max|v| / 127``; the
question the same way. The approximate cosine is ``s_row * s_q * (codes . q_codes)``. Its error is a sum of
``dim`` independent rounding errors, each uniform within half a step, so its standard deviation is
``sigma = sqrt((s_row**2 * |q|**2 + s_q**2 * |v|**2) / 12)`` (|q| = |v| = 1 here), and a row's approximate
score lies within ``MARGIN_SIGMAS * sigma`` of its cosine unless rounding errors conspire far beyond any
tail worth naming (a sum of uniforms has lighter tails than a Gaussian, and 7 sigma of a Gaussian is 1e-12).

Selection (``candidates``): if ``kth`` is the ``k``-th best approximate score, the ``k``-th best cosine is at
most ``kth + m`` and every true top-``k`` row scores at least ``that - m`` approximately, so every row whose
approximate score reaches ``kth - 2m`` is rescored exactly and the rest cannot be among the ``k`` best. The
answer is the exact top-``k``, with exact similarities; ``bench_search_latency.py`` prints its recall against
plain float32 (1.0).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from shared.adapters.local.cores import core_count

if TYPE_CHECKING:
    import onnxruntime

logger = logging.getLogger(__name__)

#: Below this many rows a float32 product is as fast as the int8 pass and its selection.
MIN_ROWS = 8192
MARGIN_SIGMAS = 7.0
_SLICE = 16384
_ZERO_POINT = 128  # codes are kept as uint8 (code + 128): MLAS's fast kernel is uint8 x int8

_session: onnxruntime.InferenceSession | None = None
_session_failed = False
_lock = threading.Lock()


def quantize(matrix: NDArray[np.float32]) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """Rows as shifted int8 codes and their scales (a zero row gets scale 0 and scores 0). In slices, so a
    million rows never need a float32 temporary of their size."""
    codes = np.empty(matrix.shape, dtype=np.uint8)
    scales = np.empty(len(matrix), dtype=np.float32)
    for start in range(0, len(matrix), _SLICE):
        part = matrix[start : start + _SLICE]
        scale = np.abs(part).max(axis=1) / np.float32(127)
        safe = np.where(scale > 0, scale, np.float32(1))
        codes[start : start + len(part)] = (np.rint(part / safe[:, None]) + _ZERO_POINT).astype(np.uint8)
        scales[start : start + len(part)] = scale
    return codes, scales


def approximate(
    codes: NDArray[np.uint8], scales: NDArray[np.float32], vector: NDArray[np.float32]
) -> tuple[NDArray[np.float32], float] | None:
    """Approximate cosines of every row with ``vector`` and the margin that bounds their error (twice
    ``MARGIN_SIGMAS`` sigma for the worst-scaled row); None when onnxruntime is unavailable."""
    session = _get_session()
    if session is None:
        return None
    peak = float(np.abs(vector).max())
    if peak == 0:
        return np.zeros(len(codes), dtype=np.float32), 0.0
    q_scale = peak / 127
    q_codes = np.rint(vector / np.float32(q_scale)).astype(np.int8).reshape(-1, 1)
    dots = session.run(None, {"A": codes, "B": q_codes, "Z": np.array(_ZERO_POINT, dtype=np.uint8)})[0]
    sims = dots.reshape(-1).astype(np.float32) * (scales * np.float32(q_scale))
    worst = float(scales.max()) if len(scales) else 0.0
    sigma = float(np.sqrt((worst**2 + q_scale**2) / 12))
    return sims, 2 * MARGIN_SIGMAS * sigma


def _get_session() -> onnxruntime.InferenceSession | None:
    global _session, _session_failed
    if _session is None and not _session_failed:
        with _lock:
            if _session is None and not _session_failed:
                try:
                    import onnxruntime

                    options = onnxruntime.SessionOptions()
                    # Two threads where there are two cores: the pass is bound by memory and one core does not
                    # draw all of it (quiet, 100k x 384: 1.0 ms on two, 1.9 on one; 1M: 22 vs 42 ms); on a busy
                    # machine two were measured no slower than one. No spinning: a spinning worker burns the
                    # core the next request (or the embedder) needs.
                    options.intra_op_num_threads = min(2, core_count())
                    options.inter_op_num_threads = 1
                    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                    _session = onnxruntime.InferenceSession(
                        _matmul_integer_model(), sess_options=options, providers=["CPUExecutionProvider"]
                    )
                except Exception as exc:  # onnxruntime's errors share no base class; float32 stays exact
                    logger.warning("int8 vector pass unavailable, scanning float32 only: %s", exc)
                    _session_failed = True
    return _session


# -- the one-operator ONNX model, written as protobuf bytes (the onnx package is not a dependency) ---------
_UINT8, _INT8, _INT32 = 2, 3, 6


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes | str | int) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _tensor(name: str, elem_type: int, dims: list[str | int]) -> bytes:
    shape = b"".join(_field(1, _field(2, d) if isinstance(d, str) else _field(1, d)) for d in dims)
    tensor_type = _field(1, elem_type) + _field(2, shape)
    return _field(1, name) + _field(2, _field(1, tensor_type))  # ValueInfoProto{name, TypeProto{tensor_type}}


def _matmul_integer_model() -> bytes:
    """``Y[n, 1] = MatMulInteger(A[n, d] uint8, B[d, 1] int8, a_zero_point Z)`` (ONNX opset 13, IR 8)."""
    node = _field(1, "A") + _field(1, "B") + _field(1, "Z") + _field(2, "Y") + _field(4, "MatMulInteger")
    graph = (
        _field(1, node)
        + _field(2, "knn")
        + _field(11, _tensor("A", _UINT8, ["n", "d"]))
        + _field(11, _tensor("B", _INT8, ["d", 1]))
        + _field(11, _tensor("Z", _UINT8, []))
        + _field(12, _tensor("Y", _INT32, ["n", 1]))
    )
    opset = _field(1, "") + _field(2, 13)
    return _field(1, 8) + _field(7, graph) + _field(8, opset)
