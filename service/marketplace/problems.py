"""The marketplace's problem codes, and how the plugin library's errors become them.

A package that fails verification is ``package_rejected`` (with the library's ``reason``: bad_signature,
modified_file, extra_file, revoked_key, rollback, reserved_id, duplicate_id, ...), an invalid manifest
``invalid_manifest``, an impossible lifecycle step ``invalid_plugin_state``, and a sandboxed failure
``plugin_failed`` (with the sandbox's reason: timeout, crashed, memory, self_test_failed...).
"""

from __future__ import annotations

from service.problems import ProblemError, register_problem
from signalos_core import ManifestError, PackageVerificationError, PluginError, SandboxError

__all__ = ["library_problem"]

for _code, _status, _title, _description in (
    (
        "package_rejected",
        422,
        "Plugin package rejected",
        "The package failed verification; `reason` says why (bad_signature, modified_file, extra_file, revoked_key, unknown_key, publisher_mismatch, rollback, reserved_id, incompatible_host, ...).",
    ),
    (
        "invalid_manifest",
        422,
        "Invalid plugin manifest",
        "The manifest inside the package is invalid; `issues` lists each problem with its JSON path.",
    ),
    (
        "plugin_id_taken",
        409,
        "Plugin id taken",
        "Another publisher owns this plugin id; ids are owned for ever by their first publisher.",
    ),
    (
        "version_exists",
        409,
        "Version already published",
        "This plugin version exists; publish a new version number instead (versions are immutable).",
    ),
    (
        "invalid_plugin_state",
        409,
        "Not possible in this state",
        "The install's lifecycle does not allow this step now; `state` and `reason` say where it is.",
    ),
    (
        "plugin_failed",
        422,
        "Plugin failed in its sandbox",
        "The plugin failed to start, failed its self-test or a call was contained; `reason` is the sandbox's code. Updates are rolled back automatically.",
    ),
    ("not_installed", 403, "Install required", "Only users who installed a plugin may rate it."),
    (
        "plugin_unavailable",
        409,
        "Plugin unavailable",
        "The plugin is delisted, or no version is installable on this host (all yanked or incompatible).",
    ),
):
    register_problem(_code, _status, _title, _description)


def library_problem(exc: PluginError) -> ProblemError:
    """The problem a plugin library error is reported as."""
    if isinstance(exc, PackageVerificationError):
        return ProblemError(
            "package_rejected", detail=str(exc), extra={"reason": exc.reason, "plugin_id": exc.plugin_id}
        )
    if isinstance(exc, ManifestError):
        return ProblemError("invalid_manifest", detail=str(exc), extra={"issues": exc.issues})
    if isinstance(exc, SandboxError):
        return ProblemError("plugin_failed", detail=str(exc), extra={"reason": exc.reason, "plugin_id": exc.plugin_id})
    return ProblemError("invalid_plugin_state", detail=str(exc), extra={"state": getattr(exc, "state", None)})
