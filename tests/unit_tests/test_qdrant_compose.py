"""The Qdrant compose files in integrations/qdrant/ say what their README promises."""

from __future__ import annotations

from pathlib import Path

import yaml

FOLDER = Path(__file__).resolve().parents[2] / "integrations" / "qdrant"


def test_single_node_compose() -> None:
    compose = yaml.safe_load((FOLDER / "docker-compose.yml").read_text())
    (service,) = compose["services"].values()
    assert service["image"].startswith("qdrant/qdrant:")
    assert "6333:6333" in service["ports"]
    assert "QDRANT__SERVICE__API_KEY" in service["environment"]


def test_cluster_compose_has_three_replicating_nodes() -> None:
    compose = yaml.safe_load((FOLDER / "docker-compose.cluster.yml").read_text())
    services = compose["services"]
    assert sorted(services) == ["qdrant-1", "qdrant-2", "qdrant-3"]
    for name, service in services.items():
        env = service["environment"]
        assert env["QDRANT__CLUSTER__ENABLED"] == "true"
        assert int(env["QDRANT__STORAGE__COLLECTION__REPLICATION_FACTOR"]) >= 2
        assert service["command"][-1] == f"http://{name}:6335"  # its own P2P address
    assert "--bootstrap" not in services["qdrant-1"]["command"]
    for joiner in ("qdrant-2", "qdrant-3"):
        command = services[joiner]["command"]
        assert command[command.index("--bootstrap") + 1] == "http://qdrant-1:6335"
    volumes = [v.split(":")[0] for service in services.values() for v in service["volumes"]]
    assert len(volumes) == len(set(volumes))  # no two nodes share a storage volume
