"""docs/security.md: its Python example runs, and it documents every 2FA setting and problem code."""

from __future__ import annotations

import re
from pathlib import Path

from service.problems import PROBLEMS
from service.settings import ENVIRONMENT
from service.twofactor import problem_codes

DOC = Path(__file__).resolve().parents[3] / "docs" / "security.md"
_TWOFACTOR_VARIABLES = (
    "MFA_PENDING_TTL",
    "OTP_",
    "MFA_LOCKOUT",
    "MFA_IP_RATE",
    "STEP_UP",
    "RECOVERY",
    "TOTP_ISSUER",
    "OUTBOX",
    "SMTP",
    "SMS",
)


def test_python_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert blocks
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {"__name__": "docs_example"})  # noqa: S102 - our own documentation


def test_every_setting_and_problem_code_is_documented() -> None:
    text = DOC.read_text()
    for variable in ENVIRONMENT:
        if any(part in variable.name for part in _TWOFACTOR_VARIABLES):
            short = variable.name.removeprefix("SIGNALOS_")
            assert short in text, variable.name
    for code in (*problem_codes.CODES, "mfa_required", "rate_limited"):
        assert code in PROBLEMS
        assert f"`{code}`" in text
