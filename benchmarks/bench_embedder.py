"""Builtin embedders' throughput against raw onnxruntime on the same texts, side by side in one run.

For each shipped model (``shared.adapters.local.builtin_embedder.BUILTIN_MODELS``, or ``--model``):
(a) raw: onnxruntime used the plain way, written out here: the tokenizer, one session whose operators use
every core, length-sorted batches of 16 texts (fewer if the model allows fewer), ``InferenceSession.run`` and
the model's pooling (mean or [CLS]); (b) ours: ``BuiltinEmbedder.embed_documents`` (runs of at most
``BATCH_TOKENS`` padded tokens, side by side on single-threaded sessions). Both count tokens the same way
(after truncation to the model's limit, special tokens included). The texts are windows of SciFact abstracts
of 20-250 tokens, cut deterministically. Runs alternate (a, b) over slices of the texts so that other load on
the machine hits both alike; rates are given per wall-clock second and per CPU second of the process (the
latter shifts less when other programs compete for the cores).

    .venv/bin/python benchmarks/bench_embedder.py [--texts 800] [--slices 10] [--sweep] [--model ID]

Target: (b) >= 80% of (a). ``--sweep`` times (b) at several token budgets a run (``BATCH_TOKENS``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.adapters.local.builtin_embedder import (  # noqa: E402
    BATCH_TOKENS,
    BUILTIN_MODELS,
    BuiltinEmbedder,
    BuiltinModel,
    _package_file,
)
from shared.adapters.local.cores import core_count  # noqa: E402

#: Texts a run the plain way (a): what one picks without measuring.
PLAIN_BATCH = 16

CORPUS = ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl.gz"
if not CORPUS.exists():
    CORPUS = Path("/work/shared/data/scifact/corpus.jsonl.gz")


def make_texts(count: int, seed: int = 42) -> list[str]:
    """``count`` passages of 20-250 tokens (uniform target), each a window of one SciFact abstract."""
    rng = random.Random(seed)
    abstracts: list[list[str]] = []
    with gzip.open(CORPUS, "rt", encoding="utf-8") as lines:
        for line in lines:
            doc = json.loads(line)
            words = f"{doc['title']}. {doc['text']}".split()
            if len(words) >= 40:
                abstracts.append(words)
    texts = []
    for _ in range(count):
        words = rng.choice(abstracts)
        size = max(10, int(rng.randint(20, 250) / 1.45))  # SciFact runs ~1.45 word-piece tokens per word
        start = rng.randint(0, max(0, len(words) - size))
        texts.append(" ".join(words[start : start + size]))
    return texts


class RawOnnx:
    """The same model run by hand, the way one would write it without our adapter."""

    def __init__(self, model: BuiltinModel, threads: int, batch_size: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model = model
        self.tokenizer = Tokenizer.from_file(str(_package_file(model.tokenizer_package, model.tokenizer_file)))
        self.tokenizer.enable_truncation(model.max_tokens)
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(_package_file(model.model_package, model.model_file)), options, providers=["CPUExecutionProvider"]
        )
        self.batch_size = batch_size

    def embed(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        out = np.empty((len(texts), self.model.dimension), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for r, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[r, :n] = encodings[i].ids
                mask[r, :n] = 1
            (hidden,) = self.session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )
            if self.model.pooling == "cls":
                pooled = hidden[:, 0, :]
            else:
                weights = mask.astype(np.float32)[:, :, None]
                pooled = (hidden * weights).sum(1) / weights.sum(1)
            out[rows] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out


def bench(model: BuiltinModel, texts: list[str], slices: int, threads: int, sweep: bool) -> None:
    raw = RawOnnx(model, threads, min(PLAIN_BATCH, model.batch_size))
    ours = BuiltinEmbedder(model, threads=threads)
    ours.load()
    lengths = np.array([len(e.ids) for e in raw.tokenizer.encode_batch(texts)])
    print(
        f"{model.model_id}: {len(texts)} texts, {lengths.sum()} tokens (min {lengths.min()}, "
        f"median {int(np.median(lengths))}, max {lengths.max()}); (a) batches of {raw.batch_size} on {threads} "
        f"intra-op threads, (b) runs of <= {BATCH_TOKENS} tokens ({model.batch_size} texts) side by side"
    )

    warm = texts[:64]
    raw.embed(warm)
    ours.embed_documents(warm)

    size = -(-len(texts) // slices)
    chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
    wall = {"raw": 0.0, "ours": 0.0}
    cpu = {"raw": 0.0, "ours": 0.0}
    results: dict[str, list[np.ndarray]] = {"raw": [], "ours": []}
    for index, chunk in enumerate(chunks):
        runs = [("raw", raw.embed), ("ours", ours.embed_documents)]
        for name, embed in runs if index % 2 == 0 else runs[::-1]:
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            results[name].append(embed(chunk))
            wall[name] += time.perf_counter() - wall_start
            cpu[name] += time.process_time() - cpu_start

    tokens = int(lengths.sum())
    agreement = float(np.min(np.sum(np.concatenate(results["raw"]) * np.concatenate(results["ours"]), axis=1)))
    print(f"{'':24}{'tokens/s':>10}{'texts/s':>9}{'tokens/CPU-s':>14}")
    for label, name in (("(a) raw onnxruntime", "raw"), ("(b) BuiltinEmbedder", "ours")):
        print(f"{label:24}{tokens / wall[name]:10.0f}{len(texts) / wall[name]:9.1f}{tokens / cpu[name]:14.0f}")
    print(
        f"{'ratio (b)/(a)':24}{wall['raw'] / wall['ours']:10.1%}{'':9}{cpu['raw'] / cpu['ours']:14.1%}"
        "   (target >= 80%)"
    )
    print(f"min cosine (a) vs (b): {agreement:.6f}")

    if sweep:
        sample = texts[:160]
        sample_tokens = int(lengths[:160].sum())
        print(f"token budget sweep of BuiltinEmbedder ({model.model_id}, 160 texts):")
        for budget in (64, 128, 256, 512, 1024, 2048, 4096):
            embedder = BuiltinEmbedder(model, batch_tokens=budget, threads=threads)
            embedder.embed_documents(sample[:16])
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            embedder.embed_documents(sample)
            wall_s, cpu_s = time.perf_counter() - wall_start, time.process_time() - cpu_start
            print(
                f"  {budget:5d} tokens a run: {sample_tokens / wall_s:8.0f} tokens/s "
                f"{sample_tokens / cpu_s:8.0f} tokens/CPU-s"
            )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=800, help="passages to embed (default 800)")
    parser.add_argument("--slices", type=int, default=10, help="alternate raw/ours over this many slices")
    parser.add_argument("--sweep", action="store_true", help="also time BuiltinEmbedder at several batch sizes")
    parser.add_argument(
        "--model", action="append", choices=sorted(BUILTIN_MODELS), help="only this builtin model (repeatable)"
    )
    args = parser.parse_args()

    threads = core_count()
    texts = make_texts(args.texts)
    for model_id in args.model or BUILTIN_MODELS:
        bench(BUILTIN_MODELS[model_id], texts, args.slices, threads, args.sweep)


if __name__ == "__main__":
    main()
