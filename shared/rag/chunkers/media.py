"""``presentation`` (one chunk per slide or PDF page) and ``picture`` (an image described by a model)."""

from __future__ import annotations

from pathlib import PurePosixPath

from shared.rag.types import ChunkDraft, ExtractedDocument, Section

from .errors import ModelRequired, UnsupportedDocument
from .options import ChunkOptions
from .tables import render_table

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ico"})
# RAGFlow skips the image2text model when OCR already found this much text on the picture.
_ENOUGH_OCR_CHARS = 32


def chunk_presentation(doc: ExtractedDocument, options: ChunkOptions) -> list[ChunkDraft]:
    """Presentation: one chunk per slide (``page_numbers=[slide]``); for a PDF, one chunk per page."""
    has_slides = any(s.kind == "slide" for s in doc.sections)
    if not has_slides and all(s.page is None for s in doc.sections):
        raise UnsupportedDocument(
            f"The presentation chunk method needs slides (PPTX) or pages (PDF); '{doc.filename}' has neither"
        )
    slides: dict[int, list[str]] = {}
    current: int | None = None
    for section in doc.sections:
        if section.kind == "slide":
            current = section.page if section.page is not None else (current or 0) + 1
        elif section.page is not None:
            current = section.page
        text = render_table(section, options, doc.filename) if section.kind == "table" else section.text
        if text.strip():
            slides.setdefault(current or 1, []).append(text.strip())
    return [
        ChunkDraft(content="\n".join(parts), page_numbers=[number], meta={"slide": number})
        for number, parts in sorted(slides.items())
    ]


def chunk_picture(doc: ExtractedDocument, options: ChunkOptions) -> list[ChunkDraft]:
    """Picture: the OCR text when there is enough of it, else the image2text model's description."""
    document_image = doc.meta.get("image")
    images = [s for s in doc.sections if s.kind == "image"]
    if not images and not is_image_file(doc.filename):
        raise UnsupportedDocument(
            f"The picture chunk method only handles images (JPEG, PNG, GIF, BMP, TIFF, WebP); "
            f"'{doc.filename}' is not an image"
        )
    if not images:
        images = [Section(text=doc.text, kind="image", meta={"image": document_image})]
    chunks: list[ChunkDraft] = []
    for section in images:
        ocr = section.text.strip()
        content = ocr
        if len(ocr) <= _ENOUGH_OCR_CHARS:
            if options.describe_image is None:
                raise ModelRequired("The picture chunk method needs an image2text model; configure one for the tenant")
            data = section.meta.get("image", document_image)
            if not isinstance(data, bytes | bytearray) or not data:
                raise UnsupportedDocument(f"'{doc.filename}': no image data was extracted, so it can't be described")
            description = options.describe_image(bytes(data)).strip()
            content = "\n".join(part for part in (ocr, description) if part)
        if content:
            chunks.append(ChunkDraft(content=content, page_numbers=[section.page] if section.page is not None else []))
    return chunks


def is_image_file(filename: str) -> bool:
    return PurePosixPath(filename.lower()).suffix in IMAGE_SUFFIXES
