"""Manifest validation (JSON Schema + semantic checks), semver and host ranges, contracts."""

from __future__ import annotations

import json
from decimal import Decimal

import msgspec
import pytest
import semver
from hypothesis import given, settings
from hypothesis import strategies as st

from signalos_core.plugins import (
    ConnectionDiagnosis,
    ConnectionStatus,
    HostRange,
    ManifestError,
    ParseResult,
    StrategyDecision,
    host_compatible,
    manifest_schema,
    parse_manifest,
    parse_version,
)
from signalos_core.plugins._contracts import convert_reply
from tests.core.plugins.conftest import manifest_dict


def test_valid_manifest_round_trips_through_canonical_json() -> None:
    manifest = parse_manifest(json.dumps(manifest_dict(homepage="https://example.com/p")))
    assert manifest.id == "acme.demo"
    assert manifest.permissions.network == ()
    assert parse_manifest(manifest.to_json()) == manifest
    assert manifest.semver == semver.Version(1, 0, 0)


def test_every_problem_is_reported_at_once_with_its_json_path() -> None:
    body = manifest_dict(version="1.0", kind="widget", extra=True)
    body["permissions"] = {"memory_mb": 1, "network": ["no-port"], "files": "all"}
    del body["description"]
    with pytest.raises(ManifestError) as caught:
        parse_manifest(body)
    issues = caught.value.issues
    paths = {issue.split(":")[0] for issue in issues}
    assert {
        "$.version",
        "$.kind",
        "$.permissions.memory_mb",
        "$.permissions.network[0]",
        "$.permissions.files",
        "$",
    } <= paths
    assert any("description" in issue for issue in issues)
    assert any("extra" in issue for issue in issues)
    assert caught.value.plugin_id == "acme.demo"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"id": "globex.demo"}, "$.id: must start with the publisher namespace 'acme.'"),
        ({"id": "signalos.demo", "publisher": "signalos"}, "$.publisher: 'signalos' is reserved"),
        ({"id": "core.parser", "publisher": "core"}, "reserved"),
        ({"host": ">=0.1.0, banana"}, "$.host: 'banana' must start with one of"),
        ({"host": ">=0.1, <1.0.0"}, "$.host:"),
        ({"host": ">=0.1.0,"}, "$.host: empty comparison"),
        ({"entry_point": "plugin"}, "$.entry_point"),
        ({"homepage": "http://insecure.example"}, "$.homepage"),
    ],
)
def test_semantic_and_format_errors_name_the_field(overrides: dict[str, str], fragment: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(manifest_dict(**overrides))
    assert any(fragment in issue for issue in caught.value.issues), caught.value.issues


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"[1, 2]", b"x" * 70_000])
def test_undecodable_or_oversized_manifests_are_refused(raw: bytes) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(raw)


def test_schema_is_shipped_and_valid() -> None:
    schema = manifest_schema()
    assert schema["properties"]["kind"]["enum"] == ["parser", "strategy", "provider"]


def test_network_ports_are_derived_from_declared_hosts() -> None:
    permissions = {"network": ["api.example.com:443", "ws.example.com:8443", "b.example.com:443"]}
    manifest = parse_manifest(manifest_dict(permissions=permissions))
    assert manifest.permissions.network_ports == (443, 8443)


@pytest.mark.parametrize(
    ("host_range", "version", "expected"),
    [
        (">=0.1.0, <1.0.0", "0.1.0", True),
        (">=0.1.0, <1.0.0", "1.0.0", False),
        (">=0.1.0, <1.0.0", "0.9.9-rc.1", True),
        (">0.1.0", "0.1.0", False),
        ("==0.1.0", "0.1.0", True),
        ("!=0.1.0", "0.1.0", False),
        ("<=0.2.0,>=0.2.0", "0.2.0", True),
    ],
)
def test_host_range_matching(host_range: str, version: str, expected: bool) -> None:
    assert HostRange(host_range).contains(version) is expected
    assert repr(HostRange(host_range)) == f"HostRange({host_range!r})"
    assert host_compatible(parse_manifest(manifest_dict(host=host_range)), version) is expected


def test_bad_versions_raise_manifest_errors() -> None:
    with pytest.raises(ManifestError, match="not a semantic version"):
        parse_version("1.0")


_PRE = ["", "alpha", "alpha.1", "alpha.beta", "beta", "beta.2", "beta.11", "rc.1"]
# Spec order of the pre-release tags above (semver.org section 11); "" (a release) ranks above all of them.
_PRE_RANK = {"alpha": 0, "alpha.1": 1, "alpha.beta": 2, "beta": 3, "beta.2": 4, "beta.11": 5, "rc.1": 6, "": 7}
_triples = st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30), st.sampled_from(_PRE))


def _text(triple: tuple[int, int, int, str]) -> str:
    a, b, c, pre = triple
    return f"{a}.{b}.{c}" + (f"-{pre}" if pre else "")


@settings(max_examples=60)
@given(_triples, _triples)
def test_version_order_is_semver_precedence(left: tuple[int, int, int, str], right: tuple[int, int, int, str]) -> None:
    expected = (left[:3], _PRE_RANK[left[3]]) < (right[:3], _PRE_RANK[right[3]])
    assert (parse_version(_text(left)) < parse_version(_text(right))) is expected
    assert parse_manifest(manifest_dict(version=_text(left))).version == _text(left)


def test_contract_replies_refuse_floats_extra_fields_and_non_positive_prices() -> None:
    assert convert_reply({"symbol": "EURUSD", "entry": "1.1"}, ParseResult).entry == Decimal("1.1")
    assert convert_reply({"symbol": "EURUSD", "take_profits": [2, "3"]}, ParseResult).take_profits == [2, 3]
    for bad in (
        {"symbol": "EURUSD", "entry": 1.1},
        {"symbol": "EURUSD", "take_profits": [1.5]},
        {"symbol": "EURUSD", "evil": 1},
        {"symbol": "EURUSD", "stop_loss": "-1"},
        {"symbol": "EURUSD", "entry": "NaN"},
        {"symbol": "EUR USD"},
    ):
        with pytest.raises(msgspec.ValidationError):
            convert_reply(bad, ParseResult)
    with pytest.raises(msgspec.ValidationError):
        convert_reply({"decision": "adjust", "size": "0"}, StrategyDecision)
    with pytest.raises(msgspec.ValidationError):
        convert_reply(
            {"status": "filled", "client_order_id": "c", "filled_size": "-1"},
            __import__("signalos_core.plugins", fromlist=["OrderResult"]).OrderResult,
        )


def test_connection_diagnosis_statuses() -> None:
    diagnosis = convert_reply(
        {"status": "timeout", "latency_ms": 5000, "hint": "check the firewall"}, ConnectionDiagnosis
    )
    assert diagnosis.status is ConnectionStatus.TIMEOUT
    assert not diagnosis.ok
    assert ConnectionDiagnosis(status=ConnectionStatus.OK).ok
    assert {status.value for status in ConnectionStatus} == {
        "ok",
        "dns_failure",
        "refused",
        "timeout",
        "tls_error",
        "bad_credentials",
        "wrong_server",
        "protocol_error",
        "error",
    }
