"""Held-out retrieval collections whose questions are whole paragraphs, built from text a package ships.

Both come from the test data inside the ``gensim`` wheel (pinned in the ``bench`` extra and installed with
``--no-deps``: only its files are read, gensim itself is never imported). Each is returned in BEIR's shape:
``corpus`` (id → (title, text)), ``queries`` (id → text) and ``qrels`` (query id → {document id: grade}).

**wiki-sections** (the main held-out collection): the 106 English Wikipedia articles of gensim's
``enwiki-latest-pages-articles1…-shortened.bz2`` (anarchism, autism, Alabama, Aristotle, algae, Apollo 11 …:
encyclopedic prose on unrelated subjects, unlike SciFact's biomedical abstracts). The wiki markup is
stripped, each article is cut into its sections and each section into its paragraphs (the passages; one
over 250 words is cut at sentence ends into pieces of about 150). For every section with at least three
passages whose first paragraph has 80-300 words, that paragraph becomes a question and leaves the corpus.
Judgments come from the article's own structure, not from any retrieval system: the other passages of the
question's section are relevant (grade 2), the passages of the article's other sections partly relevant
(grade 1), everything else not. This is the inverse cloze task of Lee et al. (2019, "Latent Retrieval for
Weakly Supervised Open Domain Question Answering") at paragraph scale: a paragraph asks for its context.
The judgments are fair to every ranker alike because they never looked at one; they are incomplete in the
way pooled judgments are (a passage of another article on a related subject counts as not relevant), which
lowers every ranker's score, not one kind's.

**lee** (small, human-judged): the 50 news documents of Lee, Pincombe and Welsh (2005, "An empirical
evaluation of models of text document similarity"), each pair rated 1-5 by about ten people
(``similarities0-1.txt``: the mean rating mapped to 0.2-1.0), plus the 300 documents of the same news
service in ``lee_background.cor`` as unjudged distractors. Each of the 50 documents is a question; the
other 49 whose mean rating is at least 0.6 ("3 = somewhat similar" or better) are relevant, graded
by the mean rating (0.6 → 1 … 1.0 → 3); the question itself is left out of its own ranking, as BEIR does
for ArguAna.

Nobody judged the background documents against the 50: BEIR's convention scores each as not relevant, so a
ranker is marked down for every background story it finds on the question's subject, and the vector finds
more of them than BM25 does (319 against 282 of the 390 top-10 places, 2026-12-05). ``judged`` names the 50,
and ``bench_scifact.py`` also prints the nDCG of the *condensed* ranking (unjudged documents removed before
scoring: Sakai 2007, "Alternatives to Bpref", the usual remedy for incomplete judgments). On lee the two
disagree on which component leads (BM25 0.575 vs vector 0.510; condensed: 0.717 vs 0.833).
"""

from __future__ import annotations

import bz2
import html
import re
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
LEE_FILES = ("lee.cor", "lee_background.cor", "similarities0-1.txt")

_SKIP_SECTIONS = {
    "see also",
    "references",
    "notes",
    "external links",
    "further reading",
    "bibliography",
    "sources",
    "citations",
    "footnotes",
    "works cited",
    "notes and references",
    "references and notes",
    "primary sources",
    "secondary sources",
}
_MIN_PASSAGE_WORDS = 25
_MAX_PASSAGE_WORDS = 250
_PIECE_WORDS = 150
_QUESTION_WORDS = (80, 300)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


@dataclass(frozen=True)
class Collection:
    name: str
    corpus: dict[str, tuple[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    # ids a query must not get back (the question's own document, when it is in the corpus)
    excluded: dict[str, str]
    # the documents judged against every question (None: all of them); the others' relevance is unknown
    judged: frozenset[str] | None = None


def test_data(name: str) -> Path:
    """A file of gensim's test data, from the installed wheel (gensim is not imported)."""
    try:
        path = Path(str(distribution("gensim").locate_file(f"gensim/test/test_data/{name}")))
    except PackageNotFoundError:
        raise SystemExit("the held-out collections need the bench extra: pip install --no-deps gensim==4.4.0") from None
    if not path.is_file():
        raise SystemExit(f"{path} is missing from the installed gensim wheel")
    return path


# == wiki-sections ===================================================================================
def wiki_sections() -> Collection:
    corpus: dict[str, tuple[str, str]] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    raw = bz2.decompress(test_data(WIKI_FILE).read_bytes()).decode("utf-8")
    articles = []
    for page in re.findall(r"<page>.*?</page>", raw, re.S):
        title = html.unescape(re.search(r"<title>(.*?)</title>", page, re.S).group(1))  # type: ignore[union-attr]
        namespace = re.search(r"<ns>(\d+)</ns>", page)
        text = re.search(r"<text[^>]*>(.*?)</text>", page, re.S)
        if namespace is None or namespace.group(1) != "0" or text is None:
            continue
        wikitext = html.unescape(text.group(1))
        if wikitext.lstrip().upper().startswith("#REDIRECT") or "(disambiguation)" in title:
            continue
        articles.append((title, _sections(wikitext)))
    for a, (title, sections) in enumerate(articles):
        article_ids: list[str] = []
        section_ids: list[list[str]] = []
        section_questions: list[tuple[str, str] | None] = []
        for s, (heading, paragraphs) in enumerate(sections):
            passages = [piece for p in paragraphs for piece in _pieces(p)]
            question = None
            if len(passages) >= 3 and _QUESTION_WORDS[0] <= len(passages[0].split()) <= _QUESTION_WORDS[1]:
                question = (f"w{a}-{s}", passages[0])
                passages = passages[1:]
            ids = []
            for p, passage in enumerate(passages):
                doc_id = f"w{a}-{s}-{p}"
                corpus[doc_id] = (f"{title}: {heading}", passage)
                ids.append(doc_id)
            section_ids.append(ids)
            section_questions.append(question)
            article_ids += ids
        for s, question in enumerate(section_questions):
            if question is None:
                continue
            qid, question_text = question
            queries[qid] = question_text
            own = set(section_ids[s])
            qrels[qid] = {doc_id: 2 if doc_id in own else 1 for doc_id in article_ids}
    return Collection("wiki-sections", corpus, queries, qrels, {})


def _sections(wikitext: str) -> list[tuple[str, list[str]]]:
    """(heading, prose paragraphs) of an article, the lead first; reference-like sections left out."""
    text = _strip_markup(wikitext)
    out: list[tuple[str, list[str]]] = []
    heading = "Introduction"
    lines: list[str] = []
    for line in [*text.split("\n"), "== END =="]:
        match = re.fullmatch(r"\s*(={2,6})\s*(.*?)\s*\1\s*", line)
        if match is None:
            lines.append(line)
            continue
        if heading.lower() not in _SKIP_SECTIONS:
            paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", "\n".join(lines))]
            paragraphs = [p for p in paragraphs if len(p.split()) >= _MIN_PASSAGE_WORDS]
            if paragraphs:
                out.append((heading, paragraphs))
        heading, lines = match.group(2), []
    return out


def _strip_markup(text: str) -> str:
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"<ref[^>]*/>", "", text)
    text = re.sub(r"<ref[^>]*>.*?</ref>", "", text, flags=re.S)
    for tag in ("math", "gallery", "timeline", "score", "imagemap", "syntaxhighlight", "source", "table"):
        text = re.sub(rf"<{tag}[^>]*>.*?</{tag}>", "", text, flags=re.S | re.I)
    text = _drop_nested(text, "{{", "}}")
    text = _drop_nested(text, "{|", "|}")
    # files, images, categories and interlanguage links (they may hold nested links: innermost first)
    for _ in range(3):
        text = re.sub(r"\[\[(?:File|Image|Category|[a-z]{2,3}(?:-[a-z]+)?):[^\[\]]*\]\]", "", text, flags=re.I)
        text = re.sub(r"\[\[(?:[^\[\]|]*\|)?([^\[\]]*)\]\]", r"\1", text)
    text = re.sub(r"\[https?://[^\s\]]+\s*([^\]]*)\]", r"\1", text)
    text = re.sub(r"https?://\S+", "", text)
    text = re.sub(r"'{2,}", "", text)
    text = re.sub(r"<[^>]+>", "", text)
    # list items, indented lines and table debris are not prose
    text = "\n".join("" if re.match(r"\s*[*#:;|!]", line) else line for line in text.split("\n"))
    return text


def _drop_nested(text: str, opening: str, closing: str) -> str:
    out: list[str] = []
    depth = i = 0
    while i < len(text):
        if text.startswith(opening, i):
            depth += 1
            i += len(opening)
        elif depth and text.startswith(closing, i):
            depth -= 1
            i += len(closing)
        else:
            if not depth:
                out.append(text[i])
            i += 1
    return "".join(out)


def _pieces(paragraph: str) -> list[str]:
    """The paragraph, or pieces of about ``_PIECE_WORDS`` words cut at sentence ends when it is long."""
    if len(paragraph.split()) <= _MAX_PASSAGE_WORDS:
        return [paragraph]
    pieces: list[str] = []
    current: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        current.append(sentence)
        if sum(len(s.split()) for s in current) >= _PIECE_WORDS:
            pieces.append(" ".join(current))
            current = []
    if current:
        if pieces and sum(len(s.split()) for s in current) < _MIN_PASSAGE_WORDS:
            pieces[-1] += " " + " ".join(current)
        else:
            pieces.append(" ".join(current))
    return pieces


# == lee ==============================================================================================
def lee() -> Collection:
    documents = test_data("lee.cor").read_text(encoding="latin-1").splitlines()
    background = test_data("lee_background.cor").read_text(encoding="latin-1").splitlines()
    rows = [line.split() for line in test_data("similarities0-1.txt").read_text().splitlines() if line.strip()]
    n = len(documents)

    def rating(i: int, j: int) -> float:  # the file holds the upper triangle
        return float(rows[min(i, j)][max(i, j)])

    corpus = {f"lee{i}": ("", text.strip()) for i, text in enumerate(documents)}
    corpus |= {f"bg{i}": ("", text.strip()) for i, text in enumerate(background) if text.strip()}
    queries = {f"q{i}": documents[i].strip() for i in range(n)}
    qrels: dict[str, dict[str, int]] = {}
    for i in range(n):
        judged = {f"lee{j}": _grade(rating(i, j)) for j in range(n) if j != i and rating(i, j) >= 0.6}
        if judged:
            qrels[f"q{i}"] = judged
    queries = {q: t for q, t in queries.items() if q in qrels}
    excluded = {f"q{i}": f"lee{i}" for i in range(n)}
    return Collection("lee", corpus, queries, qrels, excluded, frozenset(f"lee{i}" for i in range(n)))


def _grade(mean_rating: float) -> int:
    """0.6-0.73 → 1, 0.73-0.87 → 2, 0.87-1.0 → 3 (thirds of the 'somewhat similar or better' range)."""
    return 1 + min(2, int((mean_rating - 0.6) / (0.4 / 3) + 1e-9))
