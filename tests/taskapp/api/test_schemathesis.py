"""The API against its own OpenAPI schema, property-based (schemathesis + hypothesis),
in-process through Django's WSGI application, authenticated by a token: no input the schema
allows, and none it does not, may produce a 500.

The schema is generated in-process (drf-spectacular, no request needed) rather than fetched
through ``schemathesis.pytest.from_fixture``, whose lazy loading does not work with pytest 9
(it sets ``node._nodeid``, which pytest 9 no longer has).
"""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.config._checks import (
    NegativeDataRejectionConfig,
    PositiveDataAcceptanceConfig,
)

from taskapp.services import cluster_heartbeat

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

# Every check is on (no 5xx; statuses, content types, headers and bodies as documented;
# schema-valid requests accepted and schema-violating ones refused). The two data checks are
# told which statuses count as accepting or refusing:
# - a schema-valid request may still be a 400 for what a schema cannot say: a task that is
#   not loaded, a run and a correlation value together, an integer past API_MAX_INTEGER
#   anywhere in free-form JSON (docs/api.md); a 401 for a webhook secret that is not the
#   task's; a 404 for a run id that names no run; a 409 for a run in the wrong status;
# - a schema-violating request is refused with any 4xx, 413 (API_MAX_BODY_BYTES) included.
# Examples per operation: 17 operations x 25 examples take about 45 s here.
# SCHEMATHESIS_EXAMPLES raises it for a longer campaign (1,000: about 4 minutes, docs/api.md).
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))

_document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(public=True)))
schema = schemathesis.openapi.from_dict(_document)
schema.app = get_wsgi_application()
schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
    expected_statuses=["2xx", "400", "401", "404", "409"])
schema.config.checks.negative_data_rejection = NegativeDataRejectionConfig(
    expected_statuses=["400", "401", "403", "404", "405", "406", "409", "413", "415", "422"])


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Django's WSGI handler closes the database connection after each request; the test's
    transaction lives on it, so (like Django's own test client) the handlers are off."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def auth(operator, shop, waiting):
    waiting("A-1")  # something to list, read and signal
    # A live cluster, so health is 200: its documented 503 would count as a server error.
    cluster_heartbeat(owner="test:1", started_at=timezone.now())
    return {"Authorization": f"Token {Token.objects.create(user=operator).key}"}


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_error(case, auth):
    case.call_and_validate(headers=auth)
