"""Vectors as text: base64 of their little-endian float32s, as chunk records and the OpenSearch engine's
``vector_f32`` field keep them (a quarter of the JSON numbers' size, read without parsing them)."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


def encode_vector(vector: npt.NDArray[np.floating] | Sequence[float]) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(text: str) -> npt.NDArray[np.float32]:
    return np.frombuffer(base64.b64decode(text), dtype="<f4")
