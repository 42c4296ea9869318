"""The SignalOS exception tree.

Every error the library raises on purpose derives from :class:`SignalOSError`, so callers can catch one
class; each also subclasses the builtin it most resembles (attrs style), and carries the context needed to
act on it (a profile id, a rule id, a YAML position, a plugin id...)::

    SignalOSError
    ├── ConfigurationError (ValueError)          bad settings or environment
    ├── ProfileError                             compliance profiles
    │   ├── ProfileSyntaxError (ValueError)      not parseable YAML
    │   ├── ProfileSchemaError (ValueError)      parseable but invalid; .issues lists every problem
    │   └── ProfileNotFoundError (LookupError)
    ├── EvaluationError (ValueError)             bad input to a check (naive time, NaN, unknown instrument)
    ├── EngineError (RuntimeError)               a rules backend failed or is unavailable
    ├── AuditError
    │   ├── AuditIntegrityError                  the hash chain does not verify; .index says where, .issues all
    │   ├── AuditFormatError (ValueError)        an audit entry/record/file is not valid; .field names it
    │   └── AuditStoreError (OSError)            the audit database is missing, locked or not an audit store
    ├── ParseError (ValueError)                  signal parser input or template problems
    │   └── ChannelTemplateError                 invalid channel template; .field names the offending field
    ├── OfflineError
    │   ├── OutboxError (OSError)                the local outbox is corrupt, locked or unusable
    │   ├── MergeConflictError                   sync could not reconcile an action
    │   ├── SyncTransportError (ConnectionError) a push/pull did not complete; .ambiguous: it may have arrived
    │   │   ├── BatchRefusedError                the server refused a whole batch (4xx); .status, .code, .detail
    │   │   └── DeviceForkError                  another installation used this device id; re-register the device
    │   └── ExecutionUnavailableError (ConnectionError)  the execution provider is unreachable; retry later
    ├── PluginError
    │   ├── ManifestError (ValueError)           invalid plugin manifest
    │   ├── PackageVerificationError             bad signature, modified/extra file, revoked key, rollback
    │   ├── PluginStateError (RuntimeError)      lifecycle: not installed, quarantined, wrong state
    │   └── SandboxError (RuntimeError)          a sandboxed plugin call failed or was contained
    └── OnboardingError
        ├── WorkflowError (ValueError)           an onboarding workflow definition is invalid; .issues all
        ├── StepValidationError (ValueError)     a step's answers are invalid; .errors names every field
        └── StepStateError                       the step cannot be submitted/skipped now; .reason says why

Areas add subclasses here, next to their parent, so this drawing stays the whole tree.
"""

from __future__ import annotations

__all__ = [
    "AuditError",
    "AuditFormatError",
    "AuditIntegrityError",
    "AuditStoreError",
    "BatchRefusedError",
    "ChannelTemplateError",
    "ConfigurationError",
    "DeviceForkError",
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
]


class SignalOSError(Exception):
    """Root of every error SignalOS raises on purpose."""


class ConfigurationError(SignalOSError, ValueError):
    """Settings or environment are invalid; ``field`` names the offending setting."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ProfileError(SignalOSError):
    """Base for compliance-profile problems; ``profile_id`` when known."""

    def __init__(self, message: str, *, profile_id: str | None = None) -> None:
        super().__init__(message)
        self.profile_id = profile_id


class ProfileSyntaxError(ProfileError, ValueError):
    """The profile text is not parseable YAML (``line``/``column`` are 1-based)."""

    def __init__(
        self, message: str, *, line: int | None = None, column: int | None = None, profile_id: str | None = None
    ) -> None:
        super().__init__(message, profile_id=profile_id)
        self.line = line
        self.column = column


class ProfileSchemaError(ProfileError, ValueError):
    """The profile parsed but is invalid; ``issues`` holds every problem found, not just the first."""

    def __init__(self, message: str, *, issues: list[object] | None = None, profile_id: str | None = None) -> None:
        super().__init__(message, profile_id=profile_id)
        self.issues: list[object] = list(issues or [])


class ProfileNotFoundError(ProfileError, LookupError):
    """No profile with that id (and version) is known."""


class EvaluationError(SignalOSError, ValueError):
    """Input to a compliance check is unusable (naive datetime, NaN, negative size, unknown instrument)."""

    def __init__(self, message: str, *, field: str | None = None, rule_id: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.rule_id = rule_id


class EngineError(SignalOSError, RuntimeError):
    """A rules backend failed, swallowed an exception, or cannot be imported here."""

    def __init__(self, message: str, *, backend: str | None = None) -> None:
        super().__init__(message)
        self.backend = backend


class AuditError(SignalOSError):
    """Base for audit-trail problems."""


class AuditIntegrityError(AuditError):
    """The audit hash chain does not verify; ``index`` is the first bad record, ``reason`` what is wrong.

    ``issues`` holds every problem found (the audit package's ``VerifyIssue`` objects), ``chain_id`` the chain.
    """

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        reason: str | None = None,
        chain_id: str | None = None,
        issues: list[object] | None = None,
    ) -> None:
        super().__init__(message)
        self.index = index
        self.reason = reason
        self.chain_id = chain_id
        self.issues: list[object] = list(issues or [])


class AuditFormatError(AuditError, ValueError):
    """An audit entry, record or export file is invalid; ``field`` names the offending field or line."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class AuditStoreError(AuditError, OSError):
    """The audit database cannot be used (missing, not an audit store, locked too long); ``path`` says which."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class ParseError(SignalOSError, ValueError):
    """Signal-parser input, data file or channel template is invalid."""


class ChannelTemplateError(ParseError):
    """A channel template is invalid; ``field`` is the path of the first bad field (``keywords.sl[2]``),
    ``issues`` lists every problem found, ``template`` names the template when known."""

    def __init__(
        self, message: str, *, field: str | None = None, issues: list[str] | None = None, template: str | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self.issues = list(issues or [])
        self.template = template


class OfflineError(SignalOSError):
    """Base for the offline client and sync engine."""


class OutboxError(OfflineError, OSError):
    """The local outbox file is corrupt, locked or otherwise unusable; nothing was silently dropped."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class MergeConflictError(OfflineError):
    """Sync could not reconcile an action with the server state."""

    def __init__(self, message: str, *, action_id: str | None = None) -> None:
        super().__init__(message)
        self.action_id = action_id


class SyncTransportError(OfflineError, ConnectionError):
    """A push or pull did not complete.

    ``ambiguous`` is True when the request may have reached the server (a timeout after sending): the client
    must then reconcile (the server dedupes by action id) and never treat the actions as unsent.
    """

    def __init__(self, message: str, *, ambiguous: bool = True, cause: str = "transport") -> None:
        super().__init__(message)
        self.ambiguous = ambiguous
        self.cause = cause


class BatchRefusedError(SyncTransportError):
    """The server refused a whole pushed batch as invalid (HTTP 400/413/422): nothing in it was applied.

    Never ambiguous. The sync engine bisects the batch to isolate the offending action; ``status``, ``code``
    (the problem code) and ``detail`` are what the server said.
    """

    def __init__(self, message: str, *, status: int, code: str = "unknown", detail: str = "") -> None:
        super().__init__(message, ambiguous=False, cause=f"http_{status}_{code}")
        self.status = status
        self.code = code
        self.detail = detail


class DeviceForkError(SyncTransportError):
    """A second installation is using this device id: the server holds a different action at ``seq``.

    Nothing in the batch was applied. The device must be re-registered under a new device id (see
    ``docs/offline.md``); resending can never succeed.
    """

    def __init__(self, message: str, *, device_id: str, seq: int | None = None) -> None:
        super().__init__(message, ambiguous=False, cause="device_fork")
        self.device_id = device_id
        self.seq = seq


class ExecutionUnavailableError(OfflineError, ConnectionError):
    """The execution provider (paper or broker) could not be reached; the action is retryable, not rejected."""

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider


class PluginError(SignalOSError):
    """Base for plugin problems; ``plugin_id`` when known."""

    def __init__(self, message: str, *, plugin_id: str | None = None) -> None:
        super().__init__(message)
        self.plugin_id = plugin_id


class ManifestError(PluginError, ValueError):
    """The plugin manifest is invalid; ``issues`` lists each problem with its JSON path."""

    def __init__(self, message: str, *, issues: list[str] | None = None, plugin_id: str | None = None) -> None:
        super().__init__(message, plugin_id=plugin_id)
        self.issues = list(issues or [])


class PackageVerificationError(PluginError):
    """A plugin package failed verification (signature, file list, revoked key, rollback, shadowing)."""

    def __init__(self, message: str, *, reason: str, plugin_id: str | None = None) -> None:
        super().__init__(message, plugin_id=plugin_id)
        self.reason = reason


class PluginStateError(PluginError, RuntimeError):
    """A lifecycle operation is not possible in the plugin's current ``state`` (``None``: not installed)."""

    def __init__(self, message: str, *, state: str | None, plugin_id: str | None = None) -> None:
        super().__init__(message, plugin_id=plugin_id)
        self.state = state


class SandboxError(PluginError, RuntimeError):
    """A sandboxed plugin call failed or was contained; ``reason`` is a stable code (timeout, crashed, ...)."""

    def __init__(self, message: str, *, reason: str, plugin_id: str | None = None) -> None:
        super().__init__(message, plugin_id=plugin_id)
        self.reason = reason


class OnboardingError(SignalOSError):
    """Base for onboarding workflows and their state machine; ``step_id`` when a step is concerned."""

    def __init__(self, message: str, *, step_id: str | None = None) -> None:
        super().__init__(message)
        self.step_id = step_id


class WorkflowError(OnboardingError, ValueError):
    """An onboarding workflow (YAML or a firm's extra step) is invalid; ``issues`` lists every problem."""

    def __init__(self, message: str, *, issues: list[str] | None = None, step_id: str | None = None) -> None:
        super().__init__(message, step_id=step_id)
        self.issues = list(issues or [])


class StepValidationError(OnboardingError, ValueError):
    """A step's answers failed validation; ``errors`` holds ``{"field": ..., "message": ...}`` for each field."""

    def __init__(self, message: str, *, step_id: str, errors: list[dict[str, str]]) -> None:
        super().__init__(message, step_id=step_id)
        self.errors = list(errors)


class StepStateError(OnboardingError):
    """The step cannot be submitted or skipped now; ``reason`` is a stable code.

    Reasons: ``unknown_step``, ``blocked`` (``blocked_by`` lists the unfinished dependencies), ``not_skippable``,
    ``fact_missing`` (e.g. the email is really not verified yet), ``connection_failed`` (``diagnosis`` is the
    plugin contract's ``ConnectionDiagnosis``), ``no_connection`` (the step has nothing to test).
    """

    def __init__(
        self,
        message: str,
        *,
        step_id: str,
        reason: str,
        blocked_by: list[str] | None = None,
        diagnosis: object | None = None,
    ) -> None:
        super().__init__(message, step_id=step_id)
        self.reason = reason
        self.blocked_by = list(blocked_by or [])
        self.diagnosis = diagnosis
