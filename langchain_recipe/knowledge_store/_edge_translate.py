"""Translation of ``qdrant_client.models`` filters and selectors into qdrant-edge-py's classes.

:class:`~._edge.EdgeClient` takes the same arguments as ``QdrantClient``; these functions turn
them into what an ``EdgeShard`` takes, refusing (with :class:`InvalidInputError`) what the edge
engine cannot do rather than matching nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

from langchain_recipe.errors import InvalidInputError, StoreError

__all__ = [
    "client_vector",
    "edge",
    "edge_filter",
    "edge_vector",
    "payload_selector",
    "sparse_params_of",
    "sparse_vector_params",
    "vector_params",
    "vector_selector",
]

# Qdrant's defaults for the fields that HnswConfigDiff may leave unset (m = 0 turns the graph off).
_HNSW_DEFAULTS = {"m": 16, "ef_construct": 100, "full_scan_threshold": 10_000}


def edge() -> Any:
    """The ``qdrant_edge`` module.

    Raises:
        StoreError: qdrant-edge-py is not installed.
    """
    try:
        import qdrant_edge
    except ImportError:  # pragma: no cover - a runtime dependency; only a broken install lacks it
        msg = "engine='edge' needs the qdrant-edge-py package: pip install 'qdrant-edge-py>=0.9,<0.10'."
        raise StoreError(msg) from None
    return qdrant_edge


def edge_filter(query_filter: Any) -> Any:
    from qdrant_client import models

    if query_filter is None:
        return None
    if not isinstance(query_filter, models.Filter):
        msg = f"Expected a qdrant_client.models.Filter, got {type(query_filter).__name__}."
        raise InvalidInputError(msg)

    def conditions(value: Any) -> list[Any] | None:
        if value is None:
            return None
        return [_condition(c) for c in (value if isinstance(value, list) else [value])]

    min_should = None
    if query_filter.min_should is not None:
        min_should = edge().MinShould(conditions(query_filter.min_should.conditions), query_filter.min_should.min_count)
    return edge().Filter(
        must=conditions(query_filter.must),
        should=conditions(query_filter.should),
        must_not=conditions(query_filter.must_not),
        min_should=min_should,
    )


def _condition(condition: Any) -> Any:
    from qdrant_client import models

    qe = edge()
    if isinstance(condition, models.Filter):
        return edge_filter(condition)
    if isinstance(condition, models.HasIdCondition):
        return qe.HasIdCondition({uuid.UUID(i) if isinstance(i, str) else i for i in condition.has_id})
    if isinstance(condition, models.IsEmptyCondition):
        return qe.IsEmptyCondition(condition.is_empty.key)
    if isinstance(condition, models.IsNullCondition):
        return qe.IsNullCondition(condition.is_null.key)
    if isinstance(condition, models.HasVectorCondition):
        return qe.HasVectorCondition(condition.has_vector)
    if isinstance(condition, models.NestedCondition):
        return qe.NestedCondition(condition.nested.key, edge_filter(condition.nested.filter))
    if isinstance(condition, models.FieldCondition):
        kwargs: dict[str, Any] = {}
        match = condition.match
        if isinstance(match, models.MatchValue) and isinstance(match.value, bool):
            # qdrant-edge-py 0.9 turns a Python bool into the integer 0/1, which matches no
            # boolean payload value: refuse rather than silently match nothing.
            msg = (
                f"The edge engine (qdrant-edge-py 0.9) cannot filter on a boolean value ({condition.key} = "
                f"{match.value}); store that metadata as a string or an int (e.g. 'yes'/'no'), or use engine='qdrant'."
            )
            raise InvalidInputError(msg)
        if isinstance(match, models.MatchValue):
            kwargs["match"] = qe.MatchValue(match.value)
        elif isinstance(match, models.MatchAny):
            kwargs["match"] = qe.MatchAny(list(match.any))
        elif isinstance(match, models.MatchExcept):
            kwargs["match"] = qe.MatchExcept(list(match.except_))
        elif isinstance(match, models.MatchText):
            kwargs["match"] = qe.MatchText(match.text)
        elif match is not None:
            msg = f"The edge engine does not support the match {type(match).__name__} here."
            raise InvalidInputError(msg)
        if isinstance(condition.range, models.Range):
            kwargs["range"] = qe.RangeFloat(**condition.range.model_dump())
        elif isinstance(condition.range, models.DatetimeRange):
            bounds = condition.range.model_dump()
            kwargs["range"] = qe.RangeDateTime(
                **{k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in bounds.items()}
            )
        if condition.values_count is not None:
            kwargs["values_count"] = qe.ValuesCount(**condition.values_count.model_dump())
        if any(getattr(condition, geo) is not None for geo in ("geo_bounding_box", "geo_radius", "geo_polygon")):
            msg = "The edge engine adapter does not translate geo conditions."
            raise InvalidInputError(msg)
        return qe.FieldCondition(key=condition.key, is_empty=condition.is_empty, is_null=condition.is_null, **kwargs)
    msg = f"The edge engine does not support the filter condition {type(condition).__name__}."
    raise InvalidInputError(msg)


def payload_selector(with_payload: Any) -> Any:
    from qdrant_client import models

    if isinstance(with_payload, models.PayloadSelectorExclude):
        return edge().PayloadSelector.Exclude(list(with_payload.exclude))
    if isinstance(with_payload, models.PayloadSelectorInclude):
        return edge().PayloadSelector.Include(list(with_payload.include))
    if isinstance(with_payload, (bool, list)):
        return with_payload
    msg = f"with_payload must be a bool, a list of fields or a PayloadSelector, got {type(with_payload).__name__}."
    raise InvalidInputError(msg)


def vector_selector(with_vector: Any) -> Any:
    if isinstance(with_vector, (bool, list)):
        return with_vector
    msg = f"with_vectors must be a bool or a list of vector names, got {type(with_vector).__name__}."
    raise InvalidInputError(msg)


def vector_params(vectors_config: Any) -> dict[str, Any]:
    """``models.VectorParams`` (one, or a dict by name) as qdrant-edge-py ``EdgeVectorParams`` by name.

    Raises:
        InvalidInputError: a value is not a ``models.VectorParams``.
    """
    from qdrant_client import models

    qe = edge()
    named = vectors_config if isinstance(vectors_config, dict) else {"": vectors_config}
    vectors = {}
    for name, params in named.items():
        if not isinstance(params, models.VectorParams):
            msg = f"vectors_config[{name!r}] must be a qdrant_client.models.VectorParams, got {type(params).__name__}."
            raise InvalidInputError(msg)
        hnsw = None
        if params.hnsw_config is not None:
            diff = params.hnsw_config.model_dump(exclude_none=True)
            hnsw = qe.HnswIndexConfig(**{**_HNSW_DEFAULTS, **{k: v for k, v in diff.items() if k in _HNSW_DEFAULTS}})
        vectors[name] = qe.EdgeVectorParams(
            size=params.size,
            distance=getattr(qe.Distance, params.distance.value),
            on_disk=params.on_disk,
            multivector_config=(
                qe.MultiVectorConfig(qe.MultiVectorComparator.MaxSim) if params.multivector_config else None
            ),
            hnsw_config=hnsw,
        )
    return vectors


def sparse_vector_params(sparse_vectors_config: Any) -> dict[str, Any] | None:
    """``models.SparseVectorParams`` by name as qdrant-edge-py ``EdgeSparseVectorParams`` (``None``: none).

    Raises:
        InvalidInputError: a value is not a ``models.SparseVectorParams``, or its modifier is not
            ``None`` or ``IDF``.
    """
    from qdrant_client import models

    if not sparse_vectors_config:
        return None
    qe = edge()
    out = {}
    for name, params in sparse_vectors_config.items():
        if not isinstance(params, models.SparseVectorParams) or params.modifier not in (None, models.Modifier.IDF):
            msg = f"sparse_vectors_config[{name!r}] must be a SparseVectorParams with modifier None or IDF."
            raise InvalidInputError(msg)
        out[name] = qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf if params.modifier else None)
    return out


def sparse_params_of(config: dict[str, Any]) -> dict[str, Any] | None:
    """The ``models.SparseVectorParams`` by name that a shard's ``edge_config.json`` records."""
    from qdrant_client import models

    recorded = config.get("sparse_vectors") or {}
    return {
        name: models.SparseVectorParams(modifier=models.Modifier.IDF if params.get("modifier") == "idf" else None)
        for name, params in recorded.items()
    } or None


def edge_vector(vector: Any) -> Any:
    """A point's or a query's vector for qdrant-edge-py: ``models.SparseVector`` s become ``SparseVector`` s.

    Raises:
        InvalidInputError: the vector is neither a list, a ``models.SparseVector`` nor a dict of them.
    """
    from qdrant_client import models

    if isinstance(vector, dict):
        return {name: edge_vector(value) for name, value in vector.items()}
    if isinstance(vector, models.SparseVector):
        return edge().SparseVector(list(vector.indices), [float(v) for v in vector.values])
    if isinstance(vector, models.NearestQuery):
        return edge_vector(vector.nearest)
    if isinstance(vector, list):
        return vector
    msg = f"The edge engine takes dense or sparse vectors (or a dict of them by name), got {type(vector).__name__}."
    raise InvalidInputError(msg)


def client_vector(vector: Any) -> Any:
    """A vector qdrant-edge-py returned, with its ``SparseVector`` s as ``models.SparseVector`` s."""
    from qdrant_client import models

    if isinstance(vector, dict):
        return {name: client_vector(value) for name, value in vector.items()}
    if vector is not None and hasattr(vector, "indices") and hasattr(vector, "values"):
        return models.SparseVector(indices=list(vector.indices), values=list(vector.values))
    return vector
