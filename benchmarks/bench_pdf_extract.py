"""PDF ingestion throughput: extract (pypdf text layer) and chunk (naive) a 200-page text PDF.

The PDF is generated in memory (tests/support/docs.py): ~400 words of English-like paragraphs per page,
written the way word processors write text (absolute line positioning, TJ arrays with kerning), which is
the slower case for pypdf; ``--simple`` uses plain Tj lines instead. Imports, the tokenizer load and one
warm-up run are excluded: cold start is measured by bench_cold_start.py.

    .venv/bin/python benchmarks/bench_pdf_extract.py [--pages 200] [--words 400] [--repeat 3] [--simple]
    .venv/bin/python benchmarks/bench_pdf_extract.py --file some.pdf      # a real PDF instead

Generated PDFs use one standard font and regular lines; real ones (TeX, Word exports with embedded subset
fonts and ToUnicode maps, many short TJ runs) extract 2-3x slower with pypdf: measure them with --file.

Target: extract + chunk >= 50 pages/s on the 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.rag.parsers import extract  # noqa: E402
from tests.support.docs import make_long_pdf  # noqa: E402

TARGET_PAGES_PER_SECOND = 50.0
PARSER_CONFIG = {"chunk_token_num": 512, "delimiter": "\n", "html4excel": False}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--words", type=int, default=400, help="words per page")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--simple", action="store_true", help="plain Tj text instead of kerned TJ arrays")
    parser.add_argument("--file", type=Path, help="benchmark this PDF instead of a generated one")
    args = parser.parse_args()

    try:
        from shared.rag.chunkers import chunk_document
    except ImportError:
        chunk_document = None  # type: ignore[assignment]

    if args.file:
        data = args.file.read_bytes()
        label = args.file.name
    else:
        data = make_long_pdf(args.pages, words_per_page=args.words, kerned=not args.simple)
        label = "generated, " + ("simple Tj" if args.simple else "kerned TJ")
    warm = extract("warm.pdf", make_long_pdf(2, words_per_page=args.words, kerned=not args.simple))
    if chunk_document is not None:
        chunk_document(warm, "naive", PARSER_CONFIG)

    extract_times: list[float] = []
    chunk_times: list[float] = []
    chunks = 0
    for _ in range(args.repeat):
        started = time.perf_counter()
        document = extract("bench.pdf", data)
        extract_times.append(time.perf_counter() - started)
        if not args.file:
            assert len(document.sections) == args.pages, "every page should come back with text"
        if chunk_document is not None:
            started = time.perf_counter()
            chunks = len(chunk_document(document, "naive", PARSER_CONFIG))
            chunk_times.append(time.perf_counter() - started)

    pages = document.pages or 1
    extract_s = statistics.median(extract_times)
    words = sum(len(section.text.split()) for section in document.sections)
    summary = (
        f"pdf {pages} pages ({words // pages} words/page, {len(data) // 1024} KB, {label}), "
        f"median of {args.repeat}: extract {extract_s:.2f} s = {pages / extract_s:.1f} pages/s"
    )
    if chunk_document is not None:
        chunk_s = statistics.median(chunk_times)
        total = extract_s + chunk_s
        rate = pages / total
        summary += f"; chunk naive {chunk_s:.2f} s ({chunks} chunks); extract+chunk {total:.2f} s = {rate:.1f} pages/s"
    else:
        rate = pages / extract_s
        summary += "; shared.rag.chunkers.chunk_document not available: extraction alone"
    verdict = "PASS" if rate >= TARGET_PAGES_PER_SECOND else "FAIL"
    print(f"{summary} (target >= {TARGET_PAGES_PER_SECOND:.0f} pages/s: {verdict})")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
