"""Knowledge graphs as RAGFlow's GraphRAG builds them: entity and relation extraction by a chat model, merged
per document and per dataset, ranked by PageRank, optionally resolved and grouped into communities with
reports, and searched for ``use_kg`` retrieval. No framework imports; the chat model and the embedder come in
through their ports."""
