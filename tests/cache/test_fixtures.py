"""The redis fixtures' contract: skip without the binary locally, fail loudly under CI."""

import os

import pytest
import redis_fixtures


def _no_binaries(monkeypatch):
    monkeypatch.setattr(redis_fixtures.shutil, "which", lambda name: None)
    real_access = os.access
    monkeypatch.setattr(
        redis_fixtures.os, "access", lambda p, m: False if "redis" in str(p) else real_access(p, m)
    )


def test_missing_binary_fails_under_ci(monkeypatch):
    _no_binaries(monkeypatch)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required under CI"):
        redis_fixtures.require_binary("redis-server")


def test_missing_binary_skips_outside_ci(monkeypatch):
    _no_binaries(monkeypatch)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not found"):
        redis_fixtures.require_binary("redis-server")


def test_free_ports_avoid_6379_and_leave_room_for_the_cluster_bus():
    for _ in range(20):
        port = redis_fixtures.free_port(cluster_bus=True)
        assert port != 6379 and port + 10000 <= 65535
        assert redis_fixtures._port_free(port + 10000)


@pytest.mark.redis
def test_server_restarts_on_the_same_port(redis_server):
    redis_server.start()
    port = redis_server.port
    with redis_server.client() as c:
        c.set("x", b"1")
    redis_server.stop()
    assert not redis_server.running
    redis_server.start()
    assert redis_server.port == port
    with redis_server.client() as c:
        assert c.get("x") is None  # --save '' --appendonly no: nothing persisted
