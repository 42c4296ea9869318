"""The library's boundaries: curated public API, no web framework or ORM imports, py.typed shipped."""

from __future__ import annotations

import ast
from pathlib import Path

import signalos_core

CORE = Path(signalos_core.__file__).parent
FORBIDDEN = (
    "litestar",
    "sqlalchemy",
    "advanced_alchemy",
    "alembic",
    "fastapi",
    "flask",
    "django",
    "starlette",
    "uvicorn",
    "service",
)


def test_public_api_is_pinned() -> None:
    assert sorted(signalos_core.__all__) == [
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
    for name in signalos_core.__all__:
        assert hasattr(signalos_core, name)


def test_every_error_derives_from_the_root_and_is_drawn() -> None:
    from signalos_core import _errors

    doc = _errors.__doc__ or ""
    for name in _errors.__all__:
        error = getattr(_errors, name)
        assert issubclass(error, signalos_core.SignalOSError)
        assert name in doc, f"{name} is missing from the tree drawn in signalos_core/_errors.py"


def test_core_imports_no_web_framework_or_orm() -> None:
    offenders = []
    for path in CORE.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(CORE)}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_py_typed_is_shipped() -> None:
    assert (CORE / "py.typed").exists()
