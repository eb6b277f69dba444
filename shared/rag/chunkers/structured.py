"""``book``, ``laws`` and ``manual``: chunks cut at headings, each opening with its title path.

* book — any heading level; consecutive small sibling sections merge while they fit.
* laws — articles ("Article 5", "第五条") are the unit: one article per chunk (split only when it alone
  exceeds the budget, at line/clause boundaries first); chapters, sections and parts form the path.
* manual — headings of levels 1 to 3 cut; deeper headings stay inside their section's text.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.rag.tokens import count_tokens
from shared.rag.types import ChunkDraft, ExtractedDocument, Section

from .general import chunk_naive, flow_chunks
from .options import ChunkOptions
from .outline import (
    ARTICLE,
    CHAPTER,
    PART,
    RANK_ARTICLE,
    RANK_CHAPTER,
    RANK_PART,
    RANK_SECTION,
    SECTION,
    Block,
    Matcher,
    OutlineRules,
    build_outline,
    chinese_items,
    has_heading_sections,
    labelled,
    numbered,
)
from .packing import fit_prefix

_STRUCTURAL: tuple[Matcher, ...] = (
    labelled(PART, RANK_PART),
    labelled(CHAPTER, RANK_CHAPTER),
    labelled(SECTION, RANK_SECTION),
    labelled(ARTICLE, RANK_ARTICLE),
)


def chunk_book(doc: ExtractedDocument, options: ChunkOptions) -> list[ChunkDraft]:
    """Book: heading tree from heading sections, else from Part/Chapter/Section/numbered lines."""
    if has_heading_sections(doc):
        rules = OutlineRules()
    else:
        rules = OutlineRules(use_heading_sections=False, matchers=(*_STRUCTURAL, numbered(6), chinese_items))
    blocks = _merge_siblings(build_outline(doc, rules), options)
    return _blocks_to_chunks(doc, blocks, options) or chunk_naive(doc, options)


def chunk_laws(doc: ExtractedDocument, options: ChunkOptions) -> list[ChunkDraft]:
    """Laws: one chunk per article under its part/chapter/section path."""
    matchers: tuple[Matcher, ...] = _STRUCTURAL
    if not has_heading_sections(doc) and not _mentions_articles(doc):
        # Codes numbered "1.", "1.1" instead of "Article N": the numbers are the structure.
        matchers = (*_STRUCTURAL, numbered(6))
    blocks = build_outline(doc, OutlineRules(matchers=matchers))
    return _blocks_to_chunks(doc, blocks, options) or chunk_naive(doc, options)


def chunk_manual(doc: ExtractedDocument, options: ChunkOptions) -> list[ChunkDraft]:
    """Manual: sections at heading levels 1 to 3, each chunked on its own."""
    if has_heading_sections(doc):
        rules = OutlineRules(max_level=3)
    else:
        rules = OutlineRules(use_heading_sections=False, matchers=(*_STRUCTURAL[:3], numbered(3)))
    blocks = build_outline(doc, rules)
    return _blocks_to_chunks(doc, blocks, options) or chunk_naive(doc, options)


def _mentions_articles(doc: ExtractedDocument) -> bool:
    return any(ARTICLE.match(line.strip()) for s in doc.sections if s.kind == "text" for line in s.text.split("\n"))


def _blocks_to_chunks(doc: ExtractedDocument, blocks: Sequence[Block], options: ChunkOptions) -> list[ChunkDraft]:
    chunks: list[ChunkDraft] = []
    for block in blocks:
        if not block.has_content:
            continue
        prefix = fit_prefix(block.path, options.chunk_token_num)
        meta = {"title_path": list(block.path)}
        chunks.extend(flow_chunks(block.sections, options, filename=doc.filename, prefix=prefix, meta=meta))
    return chunks


def _merge_siblings(blocks: list[Block], options: ChunkOptions) -> list[Block]:
    """Runs of adjacent sibling blocks that fit one chunk together become one block under their parent.

    The merged block keeps each sibling's title as a heading line before its text. Blocks with tables
    are left alone (tables are chunks of their own anyway).
    """
    limit = options.chunk_token_num
    merged: list[Block] = []
    run: list[Block] = []
    run_tokens = 0

    def close_run() -> None:
        nonlocal run_tokens
        if len(run) == 1:
            merged.append(run[0])
        elif run:
            sections: list[Section] = []
            for block in run:
                sections.append(Section(text=block.path[-1], kind="heading", page=_first_page(block)))
                sections.extend(block.sections)
            merged.append(Block(path=run[0].path[:-1], sections=sections))
        run.clear()
        run_tokens = 0

    for block in blocks:
        mergeable = bool(block.path) and block.has_content and not any(s.kind == "table" for s in block.sections)
        if not mergeable:
            close_run()
            merged.append(block)
            continue
        tokens = count_tokens(block.path[-1]) + sum(count_tokens(s.text) + 1 for s in block.sections) + 1
        room = limit - count_tokens(fit_prefix(block.path[:-1], limit)) - 1
        if run and (run[0].path[:-1] != block.path[:-1] or run_tokens + tokens > room):
            close_run()
        run.append(block)
        run_tokens += tokens
    close_run()
    return merged


def _first_page(block: Block) -> int | None:
    return next((s.page for s in block.sections if s.page is not None), None)
