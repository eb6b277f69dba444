"""Chunk methods on hand-built documents: sizes, delimiters, structure, records, errors, speed."""

# ruff: noqa: RUF001  # Chinese punctuation in the samples is intended

from __future__ import annotations

import random
from typing import Any

import pytest

from shared.rag.chunkers import (
    CHUNK_METHODS,
    ChunkingError,
    InvalidParserConfig,
    ModelRequired,
    NothingToChunk,
    UnknownChunkMethod,
    UnsupportedDocument,
    chunk_document,
    wants_llm_enrichment,
)
from shared.rag.chunkers.options import Delimiters, decode_escapes
from shared.rag.chunkers.packing import split_by_tokens
from shared.rag.tokens import count_tokens
from shared.rag.types import ChunkDraft, ExtractedDocument, Section

pytestmark = pytest.mark.unit

_WORDS = [
    *("the", "of", "and", "to", "in", "is", "was", "for", "on", "that", "with", "as", "by", "at", "from", "this"),
    *("be", "are", "it", "an", "or", "which", "data", "system", "model", "result", "method", "use", "value"),
    *("time", "analysis", "network", "river", "mountain", "budget", "contract"),
]


def _sentences(rng: random.Random, words: int) -> list[str]:
    out, total = [], 0
    while total < words:
        size = rng.randint(6, 18)
        out.append(" ".join(rng.choice(_WORDS) for _ in range(size)).capitalize() + ".")
        total += size
    return out


def _pages(count: int, words_per_page: int = 400, seed: int = 7) -> ExtractedDocument:
    rng = random.Random(seed)
    sections = [Section("\n".join(_sentences(rng, words_per_page)), page=page) for page in range(1, count + 1)]
    return ExtractedDocument("report.pdf", sections, pages=count)


def _doc(*sections: Section, filename: str = "doc.txt", **meta: Any) -> ExtractedDocument:
    return ExtractedDocument(filename, list(sections), meta=dict(meta))


def _contents(chunks: list[ChunkDraft]) -> list[str]:
    return [chunk.content for chunk in chunks]


def _assert_within(chunks: list[ChunkDraft], limit: int) -> None:
    sizes = [count_tokens(chunk.content) for chunk in chunks]
    assert max(sizes) <= limit, sizes


# --- registry, options, errors ---------------------------------------------------------------------------


def test_registry_has_every_ragflow_method() -> None:
    assert set(CHUNK_METHODS) == {
        "naive",
        "book",
        "email",
        "laws",
        "manual",
        "one",
        "paper",
        "picture",
        "presentation",
        "qa",
        "table",
        "tag",
        "knowledge_graph",
    }


def test_knowledge_graph_chunks_as_naive() -> None:
    doc = _doc(Section("First paragraph about graphs."), Section("Second paragraph about nodes."))
    config = {"chunk_token_num": 8192, "delimiter": "\\n"}
    assert chunk_document(doc, "knowledge_graph", config) == chunk_document(doc, "naive", config)


def test_unknown_method_is_a_typed_error() -> None:
    with pytest.raises(UnknownChunkMethod, match="Unknown chunk method 'resume'") as caught:
        chunk_document(_doc(Section("text")), "resume", {})
    assert isinstance(caught.value, ChunkingError)


@pytest.mark.parametrize("method", sorted(CHUNK_METHODS))
def test_empty_document_says_there_is_nothing_to_chunk(method: str) -> None:
    empty = _doc(Section("   "), Section("\n\n"), filename="empty.txt")
    with pytest.raises(NothingToChunk, match=r"'empty\.txt' has no text to chunk"):
        chunk_document(empty, method, {})


@pytest.mark.parametrize("value", [0, -3, "many", 12.5, True])
def test_bad_chunk_token_num_is_rejected(value: object) -> None:
    with pytest.raises(InvalidParserConfig, match="chunk_token_num must be a positive integer"):
        chunk_document(_doc(Section("text")), "naive", {"chunk_token_num": value})


def test_delimiter_string_is_read_like_ragflow() -> None:
    assert decode_escapes("\\n!?\\t\\u3002") == "\n!?\t。"
    parsed = Delimiters.parse("\\n!?;。；！？`##``---`")
    assert parsed.singles == "\n!?;。；！？"
    assert parsed.custom == ("---", "##")  # longest first
    assert Delimiters.parse("\n") == Delimiters.parse("\\n")


def test_llm_enrichment_is_left_to_the_pipeline() -> None:
    assert not wants_llm_enrichment({})
    assert not wants_llm_enrichment({"auto_keywords": 0, "auto_questions": "0"})
    assert wants_llm_enrichment({"auto_keywords": 3})
    assert wants_llm_enrichment({"auto_questions": 1})


# --- naive ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [16, 64, 128, 512])
def test_naive_chunks_fit_the_budget_and_keep_every_word_in_order(limit: int) -> None:
    doc = _pages(6)
    chunks = chunk_document(doc, "naive", {"chunk_token_num": limit, "delimiter": "\\n!?;。；！？"})
    _assert_within(chunks, limit)
    assert " ".join(c.content for c in chunks).split() == doc.text.split()
    if limit >= 64:
        # Greedy merge: chunks are full, not one per sentence.
        sentences = doc.text.count(".")
        assert len(chunks) < sentences / 2


def test_naive_splits_at_each_delimiter_character() -> None:
    doc = _doc(Section("Alpha beta gamma! Delta epsilon? Zeta eta theta; iota kappa"))
    # A budget this small fits one clause at a time, so the cuts show where the delimiters are.
    chunks = chunk_document(doc, "naive", {"chunk_token_num": 5, "delimiter": "!?;"})
    assert _contents(chunks) == ["Alpha beta gamma!", "Delta epsilon?", "Zeta eta theta;", "iota kappa"]


def test_backticked_delimiter_is_a_forced_cut_and_is_dropped() -> None:
    doc = _doc(Section("Intro line\nsecond line##Part two text##Part three\nlast line"))
    chunks = chunk_document(doc, "naive", {"chunk_token_num": 512, "delimiter": "\\n`##`"})
    assert _contents(chunks) == ["Intro line\nsecond line", "Part two text", "Part three\nlast line"]
    # Without the backticks "#" is just a single-character delimiter and small pieces merge again.
    merged = chunk_document(doc, "naive", {"chunk_token_num": 512, "delimiter": "\\n##"})
    assert len(merged) == 1


def test_escaped_and_real_newline_delimiters_chunk_alike() -> None:
    doc = _pages(2)
    escaped = chunk_document(doc, "naive", {"chunk_token_num": 64, "delimiter": "\\n"})
    real = chunk_document(doc, "naive", {"chunk_token_num": 64, "delimiter": "\n"})
    assert escaped == real


def test_default_delimiter_is_newline_and_default_budget_512() -> None:
    doc = _pages(4)
    chunks = chunk_document(doc, "naive", {})
    _assert_within(chunks, 512)
    assert max(count_tokens(c.content) for c in chunks) > 400
    assert all(c.content.endswith(".") for c in chunks)  # cut at line ends, never mid-line


def test_text_without_delimiters_is_split_by_tokens_at_word_boundaries() -> None:
    rng = random.Random(3)
    text = " ".join(rng.choice(_WORDS) for _ in range(3000))
    chunks = chunk_document(_doc(Section(text)), "naive", {"chunk_token_num": 100, "delimiter": "\\n"})
    _assert_within(chunks, 100)
    assert len(chunks) >= 25
    assert " ".join(c.content for c in chunks).split() == text.split()


def test_cjk_text_without_spaces_is_split_within_budget() -> None:
    text = "自然语言处理是人工智能的一个重要方向" * 200
    chunks = chunk_document(_doc(Section(text)), "naive", {"chunk_token_num": 50, "delimiter": "\\n"})
    _assert_within(chunks, 50)
    assert "".join(c.content for c in chunks) == text


def test_split_by_tokens_prefers_sentence_ends() -> None:
    text = " ".join(f"Sentence number {i} talks about rivers and mountains." for i in range(100))
    parts = split_by_tokens(text, 40)
    assert all(count_tokens(p) <= 40 for p in parts)
    assert all(p.rstrip().endswith(".") for p in parts)
    assert "".join(parts) == text


def test_naive_keeps_a_heading_with_the_text_after_it() -> None:
    rng = random.Random(11)
    body = " ".join(_sentences(rng, 60))
    doc = _doc(Section(body), Section("Installation Guide", kind="heading", level=1), Section(body))
    limit = count_tokens(body) + 3  # the first body fits, the heading would just fit after it
    chunks = chunk_document(doc, "naive", {"chunk_token_num": limit})
    _assert_within(chunks, limit)
    assert not any(c.content.endswith("Installation Guide") for c in chunks)
    assert any(c.content.startswith("Installation Guide\n") for c in chunks)


def test_naive_tracks_page_numbers() -> None:
    doc = _pages(5, words_per_page=300)
    chunks = chunk_document(doc, "naive", {"chunk_token_num": 512})
    assert chunks[0].page_numbers[0] == 1
    assert chunks[-1].page_numbers[-1] == 5
    assert any(len(c.page_numbers) == 2 for c in chunks)  # a chunk spanning a page break
    pages = [p for c in chunks for p in c.page_numbers]
    assert pages == sorted(pages)


def test_naive_table_is_its_own_html_chunk() -> None:
    table = Section(
        "Name | Age", kind="table", page=2, rows=[["Name", "Age"], ["Ann", "31"], ["Bob", "42"]], has_header=True
    )
    doc = _doc(Section("Before the table.", page=1), table, Section("After the table.", page=2), filename="a.docx")
    chunks = chunk_document(doc, "naive", {"chunk_token_num": 512})
    assert _contents(chunks) == [
        "Before the table.",
        "<table><tr><th>Name</th><th>Age</th></tr><tr><td>Ann</td><td>31</td></tr>"
        "<tr><td>Bob</td><td>42</td></tr></table>",
        "After the table.",
    ]
    assert chunks[1].page_numbers == [2]


def test_naive_large_table_splits_by_rows_repeating_the_header() -> None:
    rows = [["Item", "Description"]] + [[f"item-{i}", f"description of item {i} " * 3] for i in range(60)]
    doc = _doc(Section("", kind="table", rows=rows, has_header=True), filename="a.pdf")
    chunks = chunk_document(doc, "naive", {"chunk_token_num": 128})
    _assert_within(chunks, 128)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.content.startswith("<table><tr><th>Item</th><th>Description</th></tr><tr>")
        assert chunk.content.endswith("</tr></table>")
    assert sum(c.content.count("<td>item-") for c in chunks) == 60


def test_naive_spreadsheet_rows_follow_html4excel() -> None:
    rows = [["City", "Country", "Population"], ["Paris", "France", "2.1M"], ["Lima", "", "10M"]]
    doc = _doc(Section("", kind="table", page=1, rows=rows, has_header=True), filename="cities.xlsx")
    as_text = chunk_document(doc, "naive", {"html4excel": False})
    assert _contents(as_text) == ["City: Paris; Country: France; Population: 2.1M\nCity: Lima; Population: 10M"]
    as_html = chunk_document(doc, "naive", {"html4excel": True})
    assert as_html[0].content.startswith("<table><tr><th>City</th>")


def test_chunking_is_deterministic() -> None:
    doc = _pages(3)
    for method in ("naive", "book", "laws", "manual", "paper", "one"):
        first = chunk_document(doc, method, {"chunk_token_num": 100})
        second = chunk_document(doc, method, {"chunk_token_num": 100})
        assert first == second


def test_two_hundred_pages_stay_within_the_token_limit() -> None:
    # Speed is measured in benchmarks/bench_pdf_extract.py, not here.
    chunks = chunk_document(_pages(200), "naive", {"chunk_token_num": 512, "delimiter": "\\n!?;。；！？"})
    _assert_within(chunks, 512)


# --- one --------------------------------------------------------------------------------------------------


def test_one_is_the_whole_document_in_one_chunk() -> None:
    doc = _pages(3)
    chunks = chunk_document(doc, "one", {"chunk_token_num": 16})
    assert len(chunks) == 1
    assert chunks[0].content == doc.text
    assert chunks[0].page_numbers == [1, 2, 3]


# --- book / laws / manual ---------------------------------------------------------------------------------


def test_book_chunks_open_with_their_heading_path() -> None:
    rng = random.Random(5)
    long_text = " ".join(_sentences(rng, 300))
    doc = _doc(
        Section("Preface text before any chapter."),
        Section("Chapter 1 Rivers", kind="heading", level=1),
        Section("1.1 Sources", kind="heading", level=2),
        Section(long_text),
        Section("Chapter 2 Mountains", kind="heading", level=1),
        Section("Mountains are tall."),
        filename="book.docx",
    )
    chunks = chunk_document(doc, "book", {"chunk_token_num": 96})
    _assert_within(chunks, 96)
    assert chunks[0].content == "Preface text before any chapter."
    sources = [c for c in chunks if c.meta.get("title_path") == ["Chapter 1 Rivers", "1.1 Sources"]]
    assert len(sources) > 3
    assert all(c.content.startswith("Chapter 1 Rivers\n1.1 Sources\n") for c in sources)
    assert chunks[-1].content == "Chapter 2 Mountains\nMountains are tall."


def test_book_merges_small_sibling_sections() -> None:
    doc = _doc(
        Section("Chapter 1", kind="heading", level=1),
        Section("1.1 One", kind="heading", level=2),
        Section("First short part."),
        Section("1.2 Two", kind="heading", level=2),
        Section("Second short part."),
        filename="book.md",
    )
    chunks = chunk_document(doc, "book", {"chunk_token_num": 128})
    assert _contents(chunks) == ["Chapter 1\n1.1 One\nFirst short part.\n1.2 Two\nSecond short part."]
    assert chunks[0].meta["title_path"] == ["Chapter 1"]


def test_book_finds_numbered_headings_in_plain_text() -> None:
    text = "Chapter 1 Getting Started\n1.1 Install\nRun the installer.\n1.2 Configure\nEdit the file.\n"
    text += "Chapter 2 Usage\n2.1 Basics\nPress the button."
    chunks = chunk_document(_doc(Section(text)), "book", {"chunk_token_num": 20})
    _assert_within(chunks, 20)
    assert "Chapter 2 Usage\n2.1 Basics\nPress the button." in _contents(chunks)
    first = [c for c in chunks if c.content.startswith("Chapter 1 Getting Started\n")]
    assert any("Run the installer." in c.content for c in first)


def test_laws_make_one_chunk_per_article_under_its_chapter() -> None:
    text = "\n".join(
        [
            "Civil Code of Testland",
            "Chapter 1 General Provisions",
            "Article 1 This Code regulates civil relations between persons.",
            "Article 2 Civil activities shall follow the principle of good faith.",
            "(1) parties act honestly;",
            "(2) parties keep promises.",
            "Chapter 2 Persons",
            "Section 1 Capacity",
            "Article 3 A natural person has civil capacity from birth until death.",
        ]
    )
    chunks = chunk_document(_doc(Section(text, page=1)), "laws", {"chunk_token_num": 256})
    assert _contents(chunks) == [
        "Civil Code of Testland",
        "Chapter 1 General Provisions\nArticle 1\nThis Code regulates civil relations between persons.",
        "Chapter 1 General Provisions\nArticle 2\nCivil activities shall follow the principle of good faith.\n"
        "(1) parties act honestly;\n(2) parties keep promises.",
        "Chapter 2 Persons\nSection 1 Capacity\nArticle 3\nA natural person has civil capacity from birth until death.",
    ]
    assert chunks[3].meta["title_path"] == ["Chapter 2 Persons", "Section 1 Capacity", "Article 3"]
    assert chunks[1].page_numbers == [1]


def test_laws_read_chinese_chapters_and_articles() -> None:
    text = "第一章 总则\n第一条 为了规范管理，制定本法。\n第二条 本法适用于全国。\n"
    text += "第二章 附则\n第三条 本法自公布之日起施行。"
    chunks = chunk_document(_doc(Section(text)), "laws", {"chunk_token_num": 128})
    assert _contents(chunks) == [
        "第一章 总则\n第一条\n为了规范管理，制定本法。",
        "第一章 总则\n第二条\n本法适用于全国。",
        "第二章 附则\n第三条\n本法自公布之日起施行。",
    ]


def test_laws_split_a_long_article_at_clauses_keeping_the_path() -> None:
    clauses = [f"({i}) the party shall comply with obligation number {i} in full and on time;" for i in range(40)]
    text = "Chapter 4 Obligations\nArticle 9 Each party has the following duties:\n" + "\n".join(clauses)
    chunks = chunk_document(_doc(Section(text)), "laws", {"chunk_token_num": 80})
    _assert_within(chunks, 80)
    assert len(chunks) > 3
    assert all(c.content.startswith("Chapter 4 Obligations\nArticle 9\n") for c in chunks)
    body_lines = [line for c in chunks for line in c.content.split("\n")[2:]]
    assert body_lines == ["Each party has the following duties:", *clauses]  # clauses never cut


def test_manual_cuts_at_levels_one_to_three_only() -> None:
    doc = _doc(
        Section("Setup", kind="heading", level=1),
        Section("Network", kind="heading", level=2),
        Section("Wi-Fi", kind="heading", level=3),
        Section("Join the network."),
        Section("Advanced", kind="heading", level=4),
        Section("Set a static address."),
        Section("Cable", kind="heading", level=3),
        Section("Plug it in."),
        filename="manual.docx",
    )
    chunks = chunk_document(doc, "manual", {"chunk_token_num": 128})
    assert _contents(chunks) == [
        "Setup\nNetwork\nWi-Fi\nJoin the network.\nAdvanced\nSet a static address.",
        "Setup\nNetwork\nCable\nPlug it in.",
    ]


def test_manual_numbered_headings_in_plain_text() -> None:
    text = "1 Safety\nRead this first.\n1.1 Power\nUse the supplied adapter.\n1.1.1 Cables\nCheck them.\n"
    text += "1.1.1.1 Deep detail\nStays in the body."
    chunks = chunk_document(_doc(Section(text, page=3)), "manual", {"chunk_token_num": 128})
    assert _contents(chunks) == [
        "1 Safety\nRead this first.",
        "1 Safety\n1.1 Power\nUse the supplied adapter.",
        "1 Safety\n1.1 Power\n1.1.1 Cables\nCheck them.\n1.1.1.1 Deep detail\nStays in the body.",
    ]
    assert all(c.page_numbers == [3] for c in chunks)


# --- paper ------------------------------------------------------------------------------------------------


def test_paper_has_an_abstract_chunk_sections_and_grouped_references() -> None:
    doc = _doc(
        Section("Rivers as Networks\nA. Author, B. Author", page=1),
        Section("Abstract—We model rivers as graphs. Results show clear gains.", page=1),
        Section("1 Introduction\nRivers matter.", page=1),
        Section("2 Methods\nWe built graphs.\n2.1 Data\nGauges from 40 stations.", page=2),
        Section("References\n[1] C. Author. Hydrology. 2019.\n  Journal of Water.\n[2] D. Author. Graphs.", page=3),
        filename="paper.pdf",
    )
    chunks = chunk_document(doc, "paper", {"chunk_token_num": 256})
    by_section = {c.meta["section"]: c for c in chunks}
    abstract = by_section["abstract"]
    assert abstract.content == "Abstract\nWe model rivers as graphs. Results show clear gains."
    assert abstract.keywords == ["abstract", "summary"]
    assert chunks[0].meta["section"] == "front matter"
    assert by_section["2.1 Data"].content == "2 Methods\n2.1 Data\nGauges from 40 stations."
    assert by_section["2.1 Data"].page_numbers == [2]
    assert by_section["references"].content == (
        "References\n[1] C. Author. Hydrology. 2019. Journal of Water.\n[2] D. Author. Graphs."
    )


def test_paper_with_heading_sections() -> None:
    doc = _doc(
        Section("Title of the Paper", kind="heading", level=1),
        Section("Abstract", kind="heading", level=2),
        Section("This paper studies things."),
        Section("Introduction", kind="heading", level=2),
        Section("Things are studied here."),
        filename="paper.docx",
    )
    chunks = chunk_document(doc, "paper", {})
    abstract = [c for c in chunks if c.keywords == ["abstract", "summary"]]
    assert [c.content for c in abstract] == ["Title of the Paper\nAbstract\nThis paper studies things."]
    assert "Title of the Paper\nIntroduction\nThings are studied here." in _contents(chunks)


# --- presentation -----------------------------------------------------------------------------------------


def test_presentation_is_one_chunk_per_slide() -> None:
    doc = _doc(
        Section("Welcome\nAgenda for today", kind="slide", page=1),
        Section("Results\nRevenue grew", kind="slide", page=2),
        Section("", kind="table", page=2, rows=[["Q1", "Q2"], ["10", "12"]], has_header=True),
        Section("Thanks", kind="slide", page=3),
        filename="deck.pptx",
    )
    chunks = chunk_document(doc, "presentation", {"chunk_token_num": 8})
    assert [c.page_numbers for c in chunks] == [[1], [2], [3]]
    assert chunks[1].content.startswith("Results\nRevenue grew\n<table>")
    assert chunks[2].content == "Thanks"


def test_presentation_of_a_pdf_is_one_chunk_per_page() -> None:
    doc = _pages(4, words_per_page=50)
    chunks = chunk_document(doc, "presentation", {})
    assert [c.page_numbers for c in chunks] == [[1], [2], [3], [4]]
    assert [c.content for c in chunks] == [s.text for s in doc.sections]


def test_presentation_needs_slides_or_pages() -> None:
    with pytest.raises(UnsupportedDocument, match="needs slides"):
        chunk_document(_doc(Section("no pages here"), filename="a.docx"), "presentation", {})


# --- qa / table / tag -------------------------------------------------------------------------------------


def test_qa_from_a_spreadsheet() -> None:
    rows = [["Question", "Answer"], ["What is RAG?", "Retrieval-augmented generation."], ["Empty?", ""]]
    doc = _doc(Section("", kind="table", page=1, rows=rows, has_header=True), filename="faq.xlsx")
    chunks = chunk_document(doc, "qa", {})
    assert _contents(chunks) == ["Question: What is RAG?\tAnswer: Retrieval-augmented generation."]
    assert chunks[0].questions == ["What is RAG?"]
    assert chunks[0].page_numbers == [1]


def test_qa_keeps_a_first_row_that_is_data() -> None:
    rows = [["How old is the sun?", "About 4.6 billion years."], ["Is it hot?", "Very."]]
    doc = _doc(Section("", kind="table", rows=rows, has_header=True), filename="faq.csv")
    assert [c.questions for c in chunk_document(doc, "qa", {})] == [["How old is the sun?"], ["Is it hot?"]]


def test_qa_from_headings() -> None:
    doc = _doc(
        Section("Billing", kind="heading", level=1),
        Section("How do I pay?", kind="heading", level=2),
        Section("By card or transfer."),
        Section("Can I get a refund?", kind="heading", level=2),
        Section("Within 30 days."),
        filename="faq.md",
    )
    chunks = chunk_document(doc, "qa", {})
    assert _contents(chunks) == [
        "Question: Billing\nHow do I pay?\tAnswer: By card or transfer.",
        "Question: Billing\nCan I get a refund?\tAnswer: Within 30 days.",
    ]
    assert [c.questions for c in chunks] == [["How do I pay?"], ["Can I get a refund?"]]


def test_qa_from_text_lines() -> None:
    text = "What is a vector?\tA list of numbers.\nQ: Who wrote it?\nA: The team.\nIt took a year.\nnoise line"
    chunks = chunk_document(_doc(Section(text)), "qa", {})
    assert _contents(chunks) == [
        "Question: What is a vector?\tAnswer: A list of numbers.",
        "Question: Who wrote it?\tAnswer: The team.\nIt took a year.\nnoise line",
    ]


def test_qa_labels_follow_the_dataset_language() -> None:
    chunks = chunk_document(_doc(Section("什么是RAG？\t检索增强生成。")), "qa", {}, language="Chinese")
    assert _contents(chunks) == ["问题：什么是RAG？\t回答：检索增强生成。"]


def test_qa_without_pairs_has_nothing_to_chunk() -> None:
    with pytest.raises(NothingToChunk, match="qa chunk method found nothing"):
        chunk_document(_doc(Section("just prose, no questions")), "qa", {})


def test_table_makes_one_chunk_per_row() -> None:
    rows = [["Name", "Role", "City"], ["Ann", "Engineer", "Oslo"], ["Bob", "", "Rome"]]
    doc = _doc(Section("", kind="table", page=1, rows=rows, has_header=True, meta={"sheet": "Staff"}))
    chunks = chunk_document(doc, "table", {})
    assert _contents(chunks) == ["Name: Ann; Role: Engineer; City: Oslo", "Name: Bob; City: Rome"]
    assert chunks[1].meta == {"fields": {"Name": "Bob", "City": "Rome"}, "row": 2, "sheet": "Staff"}
    assert chunks[0].page_numbers == [1]


def test_table_without_header_names_columns() -> None:
    doc = _doc(Section("", kind="table", rows=[["1", "2.5"], ["3", "4.5"]], has_header=False))
    assert _contents(chunk_document(doc, "table", {})) == ["column_1: 1; column_2: 2.5", "column_1: 3; column_2: 4.5"]


def test_table_reads_tab_separated_text() -> None:
    doc = _doc(Section("id\tname\n1\tpen\n2\tink"), filename="items.txt")
    assert _contents(chunk_document(doc, "table", {})) == ["id: 1; name: pen", "id: 2; name: ink"]


def test_tag_rows_carry_their_tags() -> None:
    rows = [
        ["content", "tags"],
        ["How to reset a password", "account, security,account"],
        ["Shipping times", "delivery，logistics"],
        ["No tags here", ""],
    ]
    doc = _doc(Section("", kind="table", rows=rows, has_header=True), filename="tags.xlsx")
    chunks = chunk_document(doc, "tag", {})
    assert [(c.content, c.tags) for c in chunks] == [
        ("How to reset a password", ["account", "security"]),
        ("Shipping times", ["delivery", "logistics"]),
    ]


# --- picture / email --------------------------------------------------------------------------------------


def test_picture_on_a_text_document_is_unsupported() -> None:
    with pytest.raises(UnsupportedDocument, match="only handles images"):
        chunk_document(_doc(Section("words"), filename="notes.txt"), "picture", {})


def test_picture_without_an_image2text_model() -> None:
    image = _doc(Section("", kind="image", meta={"image": b"\x89PNG..."}), filename="photo.png")
    with pytest.raises(ModelRequired, match="needs an image2text model; configure one for the tenant"):
        chunk_document(image, "picture", {})


def test_picture_is_described_by_the_model() -> None:
    seen: list[bytes] = []

    def describe(data: bytes) -> str:
        seen.append(data)
        return "A red bicycle leaning on a wall."

    image = _doc(Section("SALE", kind="image", page=1, meta={"image": b"jpegbytes"}), filename="photo.jpg")
    chunks = chunk_document(image, "picture", {}, describe_image=describe)
    assert seen == [b"jpegbytes"]
    assert _contents(chunks) == ["SALE\nA red bicycle leaning on a wall."]


def test_picture_with_enough_ocr_text_needs_no_model() -> None:
    text = "Quarterly revenue by region, in millions of euros"
    chunks = chunk_document(_doc(Section(text, kind="image"), filename="chart.png"), "picture", {})
    assert _contents(chunks) == [text]


def test_email_header_body_and_attachments() -> None:
    doc = _doc(
        Section("From: ann@example.com\nTo: bob@example.com\nSubject: Budget\nDate: 1 Jan 2024", kind="email_header"),
        Section("Hi Bob,\nThe budget is attached.\nAnn"),
        Section("Budget 2024 total 10k", meta={"attachment": "budget.xlsx"}),
        filename="mail.eml",
        attachments=["budget.xlsx", "logo.png"],
    )
    chunks = chunk_document(doc, "email", {"chunk_token_num": 128})
    assert _contents(chunks) == [
        "From: ann@example.com\nTo: bob@example.com\nSubject: Budget\nDate: 1 Jan 2024\n"
        "Attachments: budget.xlsx, logo.png",
        "Hi Bob,\nThe budget is attached.\nAnn",
        "Attachment: budget.xlsx\nBudget 2024 total 10k",
    ]
    assert [c.meta["part"] for c in chunks] == ["header", "body", "attachment"]


def test_email_body_is_chunked_like_naive() -> None:
    body = _pages(2).sections
    doc = _doc(Section("Subject: Long", kind="email_header"), *body, filename="long.eml")
    chunks = chunk_document(doc, "email", {"chunk_token_num": 64})
    _assert_within(chunks, 64)
    assert chunks[0].content == "Subject: Long"
    assert len(chunks) > 10


def test_email_lists_attachments_described_as_records() -> None:
    # The .eml parser lists attachments as {"filename", "content_type", "size"} without their text.
    doc = _doc(
        Section("From: ann@example.com\nSubject: Photos", kind="email_header"),
        Section("See attached."),
        filename="mail.eml",
        attachments=[{"filename": "a.jpg", "content_type": "image/jpeg", "size": 10}, {"filename": ""}],
    )
    chunks = chunk_document(doc, "email", {})
    assert _contents(chunks) == ["From: ann@example.com\nSubject: Photos\nAttachments: a.jpg", "See attached."]
