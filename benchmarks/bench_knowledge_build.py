"""Knowledge builds' own cost: build time per 100 chunks with a chat model that answers instantly.

    .venv/bin/python benchmarks/bench_knowledge_build.py [--documents 10] [--paragraphs 40]

A local container (SQLite, filesystem, embedded index) in a temporary folder: documents are uploaded and
parsed (not timed), then a knowledge graph (light, then with entity resolution and communities) and RAPTOR
are built with the in-process builder, the chat model being ``tests.support.knowledge_model`` in-process (no
HTTP, no waiting): what is timed is the executor — prompts, parsing answers, merging, PageRank, Louvain,
clustering, the builtin embedder for the entity / relation / summary vectors, and every write to the store,
the blobs and the index. Documents are processed one at a time here (the local worker runs four at once),
so the time spent embedding can be told from the rest.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from functions.local.server import local_container  # noqa: E402
from shared.container import tenant_embedder  # noqa: E402
from shared.ports.embedder import Embedder, Vectors  # noqa: E402
from shared.ports.workflow import BuildTask, ParseTask, Workflow  # noqa: E402
from shared.repos.knowledge import BuildTaskRepository  # noqa: E402
from shared.schemas.datasets import CreateDatasetRequest  # noqa: E402
from shared.schemas.documents import DocumentIdsRequest  # noqa: E402
from shared.services import knowledge_builds  # noqa: E402
from shared.services.documents import UploadedFile  # noqa: E402
from shared.services.knowledge_builds import KnowledgeBuilder  # noqa: E402
from shared.services.tenants import ModelSetting  # noqa: E402
from tests.support.knowledge_model import InstantChatModel  # noqa: E402


class Recorder(Workflow):
    """Keeps what would start in the background, so this script runs it in the foreground, timed."""

    def __init__(self) -> None:
        self.parses: list[ParseTask] = []
        self.builds: list[BuildTask] = []

    def start_parse(self, task: ParseTask) -> None:
        self.parses.append(task)

    def start_build(self, task: BuildTask) -> None:
        self.builds.append(task)

    def ping(self) -> None:
        return None


class TimedEmbedder(Embedder):
    """The dataset's embedder, with the time spent in it added up (to tell it from the rest)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.seconds = 0.0

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        begin = time.perf_counter()
        try:
            return self.inner.embed_documents(texts)
        finally:
            self.seconds += time.perf_counter() - begin


PEOPLE = ["Ada Lovelace", "Charles Babbage", "Marie Curie", "Pierre Curie", "Alan Turing", "Grace Hopper"]
PLACES = ["London", "Paris", "Princeton", "Cambridge", "Warsaw", "Boston"]
THINGS = ["Analytical Engine", "Difference Engine", "Radium Institute", "Bombe", "Compiler", "Enigma"]


def paragraph(rng: random.Random) -> str:
    person, place, thing = rng.choice(PEOPLE), rng.choice(PLACES), rng.choice(THINGS)
    other = rng.choice(PEOPLE)
    return (
        f"{person} worked on the {thing} in {place} with {other}. "
        f"Years later the {thing} was shown in {rng.choice(PLACES)}, and {other} wrote about it."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10)
    parser.add_argument("--paragraphs", type=int, default=40, help="paragraphs per document (about one chunk each)")
    args = parser.parse_args()
    rng = random.Random(7)

    with tempfile.TemporaryDirectory() as folder:
        container = local_container(Path(folder))
        recorder = Recorder()
        container.overrides.update(workflow=recorder, build_workflow=recorder)
        model = InstantChatModel()
        tenant, _ = container.tenant_service.create(
            "bench", [ModelSetting(model.model_id, "chat", api_base="http://127.0.0.1:9/v1", api_key="unused")]
        )
        dataset = container.datasets.create(
            tenant.id,
            CreateDatasetRequest.model_validate(
                {"name": "bench", "parser_config": {"chunk_token_num": 48, "delimiter": "\n"}}
            ),
        )
        files = [
            UploadedFile(f"doc{i}.txt", "\n".join(paragraph(rng) for _ in range(args.paragraphs)).encode())
            for i in range(args.documents)
        ]
        documents = container.documents.upload(tenant.id, dataset["id"], files)
        container.ingestion.parse(
            tenant.id, dataset["id"], DocumentIdsRequest(document_ids=[d["id"] for d in documents])
        )
        for parse in recorder.parses:
            container.ingestion.run_task(parse)
        chunks = sum(len(container.document_repo.chunks_of(d["id"])) for d in documents)

        knowledge_builds.DOCUMENT_CONCURRENCY = 1  # type: ignore[misc]  # see the module docstring
        embedder = TimedEmbedder(tenant_embedder(dataset["embedding_model"], container.tenants.get(tenant.id)))  # type: ignore[arg-type]
        embedder.embed_documents(["warm up"])  # the model loaded before timing
        builder = KnowledgeBuilder(
            datasets=container.dataset_repo,
            documents=container.document_repo,
            tenants=container.tenants,
            tasks=BuildTaskRepository(container.metadata),
            graphs=container.graph_store,
            blobs=container.blobs,
            index=lambda: container.search_index,
            workflow=lambda: container.build_workflow,
            embedder_for=lambda model_id, tenant: embedder,
            chat_model_for=lambda tenant, model_id: model,
            catalog=container.catalog,
        )

        print(f"{args.documents} documents, {chunks} chunks; chat model: instant (in-process)")
        for label, kind, graphrag in (
            ("graph (light)", "graphrag", {}),
            ("graph + resolution + communities", "graphrag", {"resolution": True, "community": True}),
            ("RAPTOR", "raptor", None),
        ):
            if graphrag is not None:
                container.graph_store.delete(tenant.id, dataset["id"])
                current = container.dataset_repo.get(tenant.id, dataset["id"])
                assert current is not None
                config = {**current["parser_config"], "graphrag": {"use_graphrag": True, **graphrag}}
                container.dataset_repo.update(current, {"parser_config": config, "update_time": current["update_time"]})
            container.knowledge.run(tenant.id, dataset["id"], kind)  # type: ignore[arg-type]
            embedder.seconds = 0.0
            begin = time.perf_counter()
            builder.run_task(recorder.builds.pop())
            elapsed = time.perf_counter() - begin
            own = elapsed - embedder.seconds
            trace = container.knowledge.trace(tenant.id, dataset["id"], kind)  # type: ignore[arg-type]
            assert trace["progress"] == 1.0, trace["progress_msg"]
            print(
                f"{label:34s} {100 * elapsed / chunks:6.2f} s per 100 chunks ({elapsed:.2f} s; embedding "
                f"{embedder.seconds:.2f} s; the rest {100 * own / chunks:.2f} s per 100 chunks)"
            )


if __name__ == "__main__":
    main()
