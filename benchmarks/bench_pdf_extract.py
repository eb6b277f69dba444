"""PDF text-layer extraction: PDFium (the fast path) against pypdf (the fallback), in the same run.

Two corpora:

* **Real-world**: every PDF found on the machine: ``tests/data/pdfs`` (committed, see its README), the
  system's documentation (``/usr/share/doc``, ``/usr/local/share/doc``: ``*.pdf`` and ``*.pdf.gz``, the
  latter decompressed in memory) and the Python environment's packages, plus any ``--corpus`` file or
  folder; the same content found twice is read once. Here that is TeX (pdfTeX, PassiveTeX) and DocBook/FOP
  output: subset fonts with ToUnicode maps, ligatures, short kerned runs — what real PDFs are made of.
  Each document is extracted whole, and by PDFium also in 12-page ranges as the pipeline's
  ``task_page_size`` fan-out reads it (the document is opened once per range).
* **Generated**: a ``--pages`` page PDF written in memory (tests/support/docs.py): ~``--words`` words of
  English-like paragraphs per page in one standard font, written the way word processors write text
  (absolute positioning, TJ arrays with kerning; ``--simple`` for plain Tj lines). Also chunked (naive).

Imports, the tokenizer load and a warm-up are excluded (cold start is bench_cold_start.py's). Times are
medians of ``--repeat`` runs; pypdf on the real-world corpus runs ``--baseline-repeat`` times (once by
default: it takes ~20 s here).

    .venv/bin/python benchmarks/bench_pdf_extract.py [--repeat 3] [--baseline-repeat 1] [--corpus PATH ...]
    .venv/bin/python benchmarks/bench_pdf_extract.py --pages 200 --words 400 --simple

Targets: real-world extraction >= 200 pages/s (PDFium, whole documents and 12-page ranges); the generated
PDF extracted and chunked >= 50 pages/s. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import statistics
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.rag.parsers import ParseError, pdf  # noqa: E402
from tests.support.docs import make_long_pdf  # noqa: E402

REAL_WORLD_TARGET = 200.0  # pages/s, PDFium text-layer extraction
GENERATED_TARGET = 50.0  # pages/s, extract + chunk
RANGE_SIZE = 12  # RAGFlow's default task_page_size
PARSER_CONFIG = {"chunk_token_num": 512, "delimiter": "\n", "html4excel": False}
DEFAULT_ROOTS = (
    ROOT / "tests" / "data" / "pdfs",
    Path("/usr/share/doc"),
    Path("/usr/local/share/doc"),
    Path(sysconfig.get_paths()["purelib"]),
)
WHOLE = 1 << 31


@dataclass(frozen=True)
class Pdf:
    name: str
    data: bytes
    pages: int


def _candidates(roots: list[Path]) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.name.lower().endswith((".pdf", ".pdf.gz")) and path.is_file():
                    yield path


def find_corpus(roots: list[Path]) -> tuple[list[Pdf], list[str]]:
    """The PDFs with a text layer under ``roots``, each content once; and what was skipped, with why."""
    found: list[Pdf] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for path in _candidates(roots):
        data = path.read_bytes()
        if path.name.lower().endswith(".gz"):
            data = gzip.decompress(data)
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen or b"%PDF" not in data[:1024]:
            continue
        seen.add(digest)
        try:
            document = pdf.parse(path.name, data)
        except ParseError as exc:
            skipped.append(f"{path}: {exc.message}")
            continue
        assert document.pages is not None
        found.append(Pdf(f"{path.parent.name}/{path.name}", data, document.pages))
    return found, skipped


def _median_seconds(run: Callable[[], object], repeat: int, cpu: list[float] | None = None) -> float:
    """Median wall-clock seconds of ``repeat`` runs; their median CPU seconds are appended to ``cpu``."""
    wall, used = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - started)
        used.append(time.process_time() - started_cpu)
    if cpu is not None:
        cpu.append(statistics.median(used))
    return statistics.median(wall)


def _whole(document: Pdf, fast_path: bool) -> Callable[[], object]:
    return lambda: pdf.extract_pdf_pages(document.data, 0, WHOLE, document.name, fast_path=fast_path)


def _ranges(document: Pdf) -> Callable[[], object]:
    def run() -> None:
        for start in range(0, document.pages, RANGE_SIZE):
            pdf.extract_pdf_pages(document.data, start, start + RANGE_SIZE, document.name)

    return run


def real_world(corpus: list[Pdf], repeat: int, baseline_repeat: int) -> tuple[float, float]:
    """Prints each document's rates and the corpus totals; returns PDFium's (whole, ranges) pages/s."""
    total = sum(document.pages for document in corpus)
    fast = slow = ranged = 0.0
    fast_cpu: list[float] = []
    slow_cpu: list[float] = []
    width = max(len(document.name) for document in corpus)
    for document in corpus:
        fast_s = _median_seconds(_whole(document, True), repeat, fast_cpu)
        ranged_s = _median_seconds(_ranges(document), repeat)
        slow_s = _median_seconds(_whole(document, False), baseline_repeat, slow_cpu)
        fast, slow, ranged = fast + fast_s, slow + slow_s, ranged + ranged_s
        print(
            f"  {document.name:<{width}} {document.pages:4d} pages  pdfium {document.pages / fast_s:7.1f} pages/s"
            f" ({RANGE_SIZE}-page ranges {document.pages / ranged_s:7.1f})  pypdf {document.pages / slow_s:6.1f}"
            f"  x{slow_s / fast_s:.1f}"
        )
    megabytes = sum(len(document.data) for document in corpus) / 1e6
    print(
        f"real-world, {len(corpus)} PDFs, {total} pages, {megabytes:.1f} MB: pdfium {total / fast:.1f} pages/s"
        f" (median of {repeat}; {RANGE_SIZE}-page ranges {total / ranged:.1f}), pypdf {total / slow:.1f} pages/s"
        f" (median of {baseline_repeat}): pdfium/pypdf = {slow / fast:.1f}x; per CPU second (what a busy machine"
        f" leaves of the wall clock): pdfium {total / sum(fast_cpu):.1f}, pypdf {total / sum(slow_cpu):.1f} pages"
    )
    return total / fast, total / ranged


def generated(pages: int, words: int, simple: bool, repeat: int) -> float:
    """Prints both readers' rates on a generated PDF and PDFium's extract + chunk; returns the latter."""
    from shared.rag.chunkers import chunk_document

    data = make_long_pdf(pages, words_per_page=words, kerned=not simple)
    label = f"generated, {pages} pages, {words} words/page, {len(data) // 1024} KB, " + (
        "simple Tj" if simple else "kerned TJ"
    )
    document = pdf.extract_pdf_pages(data, 0, WHOLE, "bench.pdf")
    assert len(document.sections) == pages, "every page should come back with text"
    fast_s = _median_seconds(lambda: pdf.extract_pdf_pages(data, 0, WHOLE, "bench.pdf"), repeat)
    slow_s = _median_seconds(lambda: pdf.extract_pdf_pages(data, 0, WHOLE, "bench.pdf", fast_path=False), repeat)
    chunk_document(document, "naive", PARSER_CONFIG)  # warm-up: the tokenizer
    chunks = len(chunk_document(document, "naive", PARSER_CONFIG))
    chunk_s = _median_seconds(lambda: chunk_document(document, "naive", PARSER_CONFIG), repeat)
    rate = pages / (fast_s + chunk_s)
    print(
        f"{label}, median of {repeat}: pdfium {pages / fast_s:.1f} pages/s, pypdf {pages / slow_s:.1f} pages/s:"
        f" pdfium/pypdf = {slow_s / fast_s:.1f}x; chunk naive {chunk_s:.2f} s ({chunks} chunks);"
        f" pdfium extract + chunk {rate:.1f} pages/s"
    )
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-repeat", type=int, default=1, help="runs of pypdf on the real-world corpus")
    parser.add_argument("--corpus", type=Path, action="append", default=[], help="more PDFs (files or folders)")
    parser.add_argument("--pages", type=int, default=200, help="pages of the generated PDF")
    parser.add_argument("--words", type=int, default=400, help="words per page of the generated PDF")
    parser.add_argument("--simple", action="store_true", help="generated PDF: plain Tj text, not kerned TJ arrays")
    args = parser.parse_args()

    print(f"pypdfium2 {metadata.version('pypdfium2')}, pypdf {metadata.version('pypdf')}")
    warm = make_long_pdf(2, words_per_page=50)
    for fast_path in (True, False):  # imports and first-use setup of both readers
        pdf.extract_pdf_pages(warm, 0, WHOLE, "warm.pdf", fast_path=fast_path)

    corpus, skipped = find_corpus([*DEFAULT_ROOTS, *args.corpus])
    for reason in skipped:
        print(f"  skipped {reason}")
    verdicts = []
    if corpus:
        whole, ranged = real_world(corpus, args.repeat, args.baseline_repeat)
        label = f"real-world pdfium whole documents {whole:.1f}, {RANGE_SIZE}-page ranges {ranged:.1f}"
        verdicts.append((label, min(whole, ranged), REAL_WORLD_TARGET))
    else:
        print("no real-world PDF found (pass --corpus)")
    rate = generated(args.pages, args.words, args.simple, args.repeat)
    verdicts.append((f"generated extract + chunk {rate:.1f}", rate, GENERATED_TARGET))

    failed = False
    for label, value, target in verdicts:
        verdict = "PASS" if value >= target else "FAIL"
        failed |= verdict == "FAIL"
        print(f"{label} pages/s (target >= {target:.0f}): {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
