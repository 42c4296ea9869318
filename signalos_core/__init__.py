"""SignalOS Core: the pure-Python library behind the SignalOS trade-signal copier.

It holds the compliance engine, the offline signal parser, the offline action queue with its sync logic,
and the plugin contracts and sandbox. It imports no web framework and no ORM (a test enforces it); the
HTTP service in the ``service`` package is a thin layer over it.

The public API is exactly ``__all__`` (pinned by ``tests/core/test_public_api.py``); everything in a module
whose name starts with an underscore is private.
"""

from __future__ import annotations

from signalos_core._errors import (
    AuditError,
    AuditFormatError,
    AuditIntegrityError,
    AuditStoreError,
    ChannelTemplateError,
    ConfigurationError,
    EngineError,
    EvaluationError,
    ExecutionUnavailableError,
    ManifestError,
    MergeConflictError,
    OfflineError,
    OnboardingError,
    OutboxError,
    PackageVerificationError,
    ParseError,
    PluginError,
    PluginStateError,
    ProfileError,
    ProfileNotFoundError,
    ProfileSchemaError,
    ProfileSyntaxError,
    SandboxError,
    SignalOSError,
    StepStateError,
    StepValidationError,
    SyncTransportError,
    WorkflowError,
)
from signalos_core._version import __version__

__all__ = [
    "AuditError",
    "AuditFormatError",
    "AuditIntegrityError",
    "AuditStoreError",
    "ChannelTemplateError",
    "ConfigurationError",
    "EngineError",
    "EvaluationError",
    "ExecutionUnavailableError",
    "ManifestError",
    "MergeConflictError",
    "OfflineError",
    "OnboardingError",
    "OutboxError",
    "PackageVerificationError",
    "ParseError",
    "PluginError",
    "PluginStateError",
    "ProfileError",
    "ProfileNotFoundError",
    "ProfileSchemaError",
    "ProfileSyntaxError",
    "SandboxError",
    "SignalOSError",
    "StepStateError",
    "StepValidationError",
    "SyncTransportError",
    "WorkflowError",
    "__version__",
]
