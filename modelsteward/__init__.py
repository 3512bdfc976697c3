"""Model Steward: catalogue, serve, monitor and govern every model (ML, rules, algorithms, optimization).

>>> from modelsteward import Steward
>>> st = Steward(data_dir="./steward-data")   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelsteward.domain.lifecycle import (
    GateCheck,
    GateResult,
    Job,
    Lifecycle,
    LifecycleDefinition,
    LifecycleStatus,
    RoleGrant,
    Run,
)
from modelsteward.domain.monitoring import Alert, AlertRule, Channel, KPIPoint, Monitor, MonitorResult, MonitorSpec
from modelsteward.domain.records import (
    Alias,
    ArtifactInfo,
    AuditCheck,
    BusinessKPI,
    ColumnProfile,
    ColumnSpec,
    Dataset,
    DatasetFingerprint,
    DatasetLink,
    Event,
    Lineage,
    LineageEdge,
    ModelPage,
    ModelVersion,
    NewToken,
    Principal,
    RegisteredModel,
    Requirements,
    Resources,
    Signature,
    Source,
    TokenInfo,
    VersionSummary,
)
from modelsteward.domain.refs import ModelRef
from modelsteward.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    IntegrityError,
    InvalidArgument,
    InvalidArtifact,
    InvalidDefinition,
    MissingDependency,
    ModelFailure,
    NotFound,
    PayloadTooLarge,
    SchemaMismatch,
    StewardError,
    StoreUnavailable,
    Unauthenticated,
    UnknownKind,
)
from modelsteward.local_steward import LocalSteward
from modelsteward.steward import Steward

if TYPE_CHECKING:
    from modelsteward.kinds.loaded import LoadedModel

__version__ = "0.1.0"

__all__ = [
    "Alert",
    "AlertRule",
    "Alias",
    "AlreadyExists",
    "ArtifactInfo",
    "AuditCheck",
    "BusinessKPI",
    "Channel",
    "ColumnProfile",
    "ColumnSpec",
    "Conflict",
    "Dataset",
    "DatasetFingerprint",
    "DatasetLink",
    "Event",
    "Forbidden",
    "GateCheck",
    "GateResult",
    "IntegrityError",
    "InvalidArgument",
    "InvalidArtifact",
    "InvalidDefinition",
    "Job",
    "KPIPoint",
    "Lifecycle",
    "LifecycleDefinition",
    "LifecycleStatus",
    "Lineage",
    "LineageEdge",
    "LoadedModel",
    "LocalSteward",
    "MissingDependency",
    "ModelFailure",
    "ModelPage",
    "ModelRef",
    "ModelVersion",
    "Monitor",
    "MonitorResult",
    "MonitorSpec",
    "NewToken",
    "NotFound",
    "PayloadTooLarge",
    "Principal",
    "RegisteredModel",
    "Requirements",
    "Resources",
    "RoleGrant",
    "Run",
    "SchemaMismatch",
    "Signature",
    "Source",
    "Steward",
    "StewardError",
    "StoreUnavailable",
    "TokenInfo",
    "Unauthenticated",
    "UnknownKind",
    "VersionSummary",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # LoadedModel pulls in pandas; keep ``import modelsteward`` light until someone asks for it.
    if name == "LoadedModel":
        from modelsteward.kinds.loaded import LoadedModel

        return LoadedModel
    raise AttributeError(f"module 'modelsteward' has no attribute {name!r}")
