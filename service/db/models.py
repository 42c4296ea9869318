"""Imports every model module so that ``metadata`` is complete (alembic autogenerate and the drift test).

Each service area adds one import line here.
"""

from __future__ import annotations

from service.accounts import models as accounts_models
from service.compliance import models as compliance_models
from service.db.base import metadata
from service.marketplace import models as marketplace_models
from service.onboarding import models as onboarding_models
from service.sync import models as sync_models
from service.twofactor import models as twofactor_models

__all__ = [
    "accounts_models",
    "compliance_models",
    "marketplace_models",
    "metadata",
    "onboarding_models",
    "sync_models",
    "twofactor_models",
]
