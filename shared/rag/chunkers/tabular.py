"""``qa``, ``table`` and ``tag``: one chunk per record.

* qa — question/answer pairs: table rows (first column the question, second the answer), heading/text
  documents (the heading path is the question, the text under it the answer), or plain text lines
  ("question<TAB>answer", or "Q: ..." / "A: ..." lines). Content is RAGFlow's
  ``"Question: q\\tAnswer: a"``; ``questions`` holds the question.
* table — one chunk per row, ``"header: value; header: value"``; the row's fields are kept in
  ``meta["fields"]``.
* tag — rows of (content, comma-separated tags): content is the first column, ``tags`` the split list.

Records are not split by ``chunk_token_num``: a pair or a row only makes sense whole.
"""

# ruff: noqa: RUF001  # CJK and typographic punctuation in patterns are intended

from __future__ import annotations

import re
from collections.abc import Iterator

from shared.rag.types import ChunkDraft, ExtractedDocument, Section

from .options import ChunkOptions
from .tables import column_names, render_table, row_fields, row_text, table_parts

_QUESTION_LINE = re.compile(r"^\s*(?:Q|Question|问题?)\s*[:：]\s*(?P<text>.*)$", re.IGNORECASE)
_ANSWER_LINE = re.compile(r"^\s*(?:A|Answer|答案?|回答)\s*[:：]\s*(?P<text>.*)$", re.IGNORECASE)
_TAG_SEPARATORS = re.compile(r"[,，、]")
# Parsers guess headers loosely; a qa/tag sheet's first row is only dropped when it reads as column labels.
_QA_LABELS = frozenset({"question", "questions", "q", "问题", "问", "answer", "answers", "a", "答案", "回答", "答"})
_TAG_LABELS = frozenset({"content", "text", "tag", "tags", "label", "labels", "内容", "文本", "标签"})


def _qa_chunk(question: str, answer: str, page: int | None, options: ChunkOptions, *, asked: str) -> ChunkDraft:
    q_label, a_label = ("Question: ", "Answer: ") if options.english else ("问题：", "回答：")
    return ChunkDraft(
        content=f"{q_label}{question}\t{a_label}{answer}",
        page_numbers=[page] if page is not None else [],
        questions=[asked],
    )


def chunk_qa(doc: ExtractedDocument, options: ChunkOptions) -> list[ChunkDraft]:
    """Q&A pairs from tables, from headings with their text, or from Q/A text lines, in reading order."""
    chunks: list[ChunkDraft] = []
    if any(s.kind == "heading" for s in doc.sections):
        chunks.extend(_qa_from_headings(doc, options))
        return chunks
    lines: list[tuple[str, int | None]] = []

    def flush_lines() -> None:
        chunks.extend(_qa_from_lines(lines, options))
        lines.clear()

    for section in doc.sections:
        if section.kind == "table" and section.rows:
            flush_lines()
            for row in _records(section, _QA_LABELS):
                cells = [cell for cell in row if cell]
                if len(row) >= 2 and row[0] and row[1]:
                    chunks.append(_qa_chunk(row[0], row[1], section.page, options, asked=row[0]))
                elif len(cells) >= 2:
                    chunks.append(_qa_chunk(cells[0], cells[1], section.page, options, asked=cells[0]))
        elif section.kind == "qa" and section.meta.get("question") and section.meta.get("answer"):
            flush_lines()
            question, answer = str(section.meta["question"]).strip(), str(section.meta["answer"]).strip()
            chunks.append(_qa_chunk(question, answer, section.page, options, asked=question))
        else:
            lines.extend((line, section.page) for line in section.text.split("\n"))
    flush_lines()
    return chunks


def _qa_from_headings(doc: ExtractedDocument, options: ChunkOptions) -> Iterator[ChunkDraft]:
    """Markdown/docx: the stack of open headings is the question, the text until the next heading the answer."""
    stack: list[tuple[int, str]] = []
    answer: list[str] = []
    page: int | None = None

    def pair() -> ChunkDraft | None:
        text = "\n".join(answer).strip()
        answer.clear()
        if not stack or not text:
            return None
        return _qa_chunk("\n".join(t for _, t in stack), text, page, options, asked=stack[-1][1])

    for section in doc.sections:
        if section.kind == "heading":
            done = pair()
            if done is not None:
                yield done
            level = max(section.level, 1)
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, " ".join(section.text.split())))
            page = section.page
            continue
        text = render_table(section, options, doc.filename) if section.kind == "table" else section.text
        if text.strip():
            answer.append(text.strip())
    done = pair()
    if done is not None:
        yield done


def _qa_from_lines(lines: list[tuple[str, int | None]], options: ChunkOptions) -> list[ChunkDraft]:
    """ "q<TAB>a" lines, and "Q: ..." / "A: ..." lines; other lines continue the current answer (or question)."""
    pairs: list[tuple[str, str, int | None]] = []
    question: str | None = None
    question_page: int | None = None
    answer: list[str] | None = None

    def close() -> None:
        nonlocal question, answer
        if question and answer is not None and "\n".join(answer).strip():
            pairs.append((question.strip(), "\n".join(answer).strip(), question_page))
        question, answer = None, None

    for raw, page in lines:
        line = raw.strip()
        if not line:
            continue
        q_match, a_match = _QUESTION_LINE.match(line), _ANSWER_LINE.match(line)
        if q_match:
            close()
            question, question_page, answer = q_match.group("text"), page, None
        elif a_match and question is not None and answer is None:
            answer = [a_match.group("text")]
        elif "\t" in line:
            close()
            q, _, a = line.partition("\t")
            question, question_page, answer = q.strip(), page, [a.strip()]
        elif answer is not None:
            answer.append(line)
        elif question is not None:
            question += " " + line
    close()
    return [_qa_chunk(q, a, page, options, asked=q) for q, a, page in pairs]


def chunk_table(doc: ExtractedDocument, options: ChunkOptions) -> list[ChunkDraft]:
    """Table: one chunk per data row, ``"header: value; ..."``; rows of tab-separated text count too."""
    chunks: list[ChunkDraft] = []
    for section in _table_sections(doc):
        header, rows = table_parts(section)
        names = column_names(header, rows)
        for number, row in enumerate(rows, start=1):
            fields = row_fields(names, row)
            if not fields:
                continue
            chunks.append(
                ChunkDraft(
                    content=row_text(fields),
                    page_numbers=[section.page] if section.page is not None else [],
                    meta={"fields": fields, "row": number, **_sheet(section)},
                )
            )
    return chunks


def chunk_tag(doc: ExtractedDocument, options: ChunkOptions) -> list[ChunkDraft]:
    """Tag: first column is the content, second the comma-separated tags (RAGFlow's ``tag_kwd``)."""
    chunks: list[ChunkDraft] = []
    for section in _table_sections(doc):
        for row in _records(section, _TAG_LABELS):
            if len(row) < 2 or not row[0]:
                continue
            tags = list(dict.fromkeys(t.strip() for t in _TAG_SEPARATORS.split(row[1]) if t.strip()))
            if tags:
                page = [section.page] if section.page is not None else []
                chunks.append(ChunkDraft(content=row[0], page_numbers=page, tags=tags))
    return chunks


def _records(section: Section, labels: frozenset[str]) -> list[list[str]]:
    rows = [[str(cell).strip() for cell in row] for row in section.rows or []]
    if rows and section.has_header and any(cell.casefold() in labels for cell in rows[0]):
        return rows[1:]
    return rows


def _table_sections(doc: ExtractedDocument) -> list[Section]:
    """The document's tables; without any, its tab-separated text lines as one table (first line a header)."""
    tables = [s for s in doc.sections if s.kind == "table" and s.rows]
    if tables:
        return tables
    rows: list[list[str]] = []
    page: int | None = None
    for section in doc.sections:
        for line in section.text.split("\n"):
            if "\t" in line and line.strip():
                rows.append([cell.strip() for cell in line.split("\t")])
                page = section.page if page is None else page
    if not rows:
        return []
    return [Section(text="", kind="table", page=page, rows=rows, has_header=True)]


def _sheet(section: Section) -> dict[str, str]:
    sheet = section.meta.get("sheet")
    return {"sheet": sheet} if isinstance(sheet, str) and sheet else {}
