"""schemathesis against the service's own OpenAPI schema (served over real HTTP): whatever it
generates, valid or not, the service never answers 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live_proxy(compressor, upstream):
    from service_helpers import settings_for

    from promptpress.service.app import create_app
    from promptpress.service.serving import ServerThread

    # Only "echo" is proxied: the fuzzer must not pick the mock upstream's failure modes by name.
    app = create_app(settings_for(upstream.url + "/v1", allowed_models=["echo"]), compressor=compressor)
    with ServerThread(app) as server:
        yield server


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(live_proxy, mode):
    # (schemathesis's pytest plugin, `from_fixture`, does not work with pytest 9: drive hypothesis directly)
    api = schemathesis.openapi.from_url(live_proxy.url + "/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.label for op in operations} >= {
        "POST /v1/compress",
        "POST /v1/chat/completions",
        "GET /healthz",
    }
    calls: dict[str, int] = {}
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            response = case.call(base_url=live_proxy.url, timeout=60)
            calls[case.operation.label] = calls.get(case.operation.label, 0) + 1
            where = f"{case.method} {case.path} {case.body!r:.200}"
            assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
            if response.status_code >= 400:
                assert set(response.json()) == {"error"}, where  # always OpenAI's error shape

        try:
            check()
        except Unsatisfiable:  # nothing negative to generate (an operation without parameters)
            assert mode is GenerationMode.NEGATIVE and not operation.body
    posts = [label for label in calls if label.startswith("POST")]
    assert len(posts) == 3 and all(calls[label] >= 5 for label in posts), calls
