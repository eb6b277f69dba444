"""Small pure parts of the knowledge builds: progress_msg stays bounded, parser_config read leniently."""

from __future__ import annotations

from shared.services.knowledge_builds import PROGRESS_MSG_LIMIT, _graphrag_config, _raptor_config, bounded, is_tabular


def test_progress_messages_keep_their_start_and_latest_lines_under_the_limit() -> None:
    lines = ["10:00:00 created task graphrag", "10:00:01 Task has been received."]
    lines += [f"10:00:02 line {i} " + "x" * 60 for i in range(2000)]
    message = bounded("\n".join(lines))
    assert len(message) <= PROGRESS_MSG_LIMIT
    kept = message.split("\n")
    assert kept[:2] == lines[:2] and kept[-1] == lines[-1]
    assert any(line.startswith("… ") and line.endswith(" lines left out …") for line in kept)
    assert bounded("short") == "short"


def test_settings_come_from_the_datasets_parser_config_with_defaults() -> None:
    graph = _graphrag_config({"parser_config": {"graphrag": {"use_graphrag": False, "method": "general"}}})
    assert graph.method == "general" and graph.entity_types[0] == "organization" and not graph.community
    odd = _graphrag_config({"parser_config": {"graphrag": {"method": "weird", "entity_types": []}}})
    assert odd.method == "light" and odd.entity_types
    raptor = _raptor_config({"parser_config": {"raptor": {"max_cluster": 8, "threshold": "high", "prompt": ""}}})
    assert raptor.max_cluster == 8 and raptor.threshold == 0.1 and "{cluster_content}" in raptor.prompt
    assert is_tabular({"suffix": "csv"}) and is_tabular({"suffix": "txt", "chunk_method": "table"})
    assert not is_tabular({"suffix": "pdf", "chunk_method": "naive"})
