"""Signed caches: tenants sharing a Redis can neither read nor poison each other's entries."""

import numpy as np
import pytest
import redis

from promptpress.cache import (
    ArrayCodec,
    AsyncSignedCache,
    KeySpace,
    MemoryCache,
    SignedCache,
    encode_arrays,
    get_or_compute,
    open_async_cache,
    open_cache,
)

SECRET_A = "tenant-a-secret-0123456789"
SECRET_B = "tenant-b-secret-0123456789"
CODEC = ArrayCodec(required=("keep",))


def _compute(value: float):
    return lambda idx: [{"keep": np.full(3, value, dtype=np.float32)} for _ in idx]


def test_tenants_sharing_a_redis_cannot_read_or_poison_each_other(redis_url):
    a = open_cache(f"{redis_url}?secret={SECRET_A}")
    b = open_cache(redis_url, secret=SECRET_B)
    assert isinstance(a, SignedCache) and isinstance(b, SignedCache)
    keys_a = KeySpace("a", "m", "c").keys(["shared chunk"])
    keys_b = KeySpace("b", "m", "c").keys(["shared chunk"])
    get_or_compute(a, keys_a, _compute(1.0), codec=CODEC)
    stored = [k.decode() for k in redis.Redis.from_url(redis_url).keys("*")]
    assert len(stored) == 1 and stored[0].startswith("pp:v1:a:m:c:default:") and stored[0] != keys_a[0]
    # b, knowing the text and a's namespace, computes keys that are not a's
    assert b.get_many(keys_a) == [None] and b.get_many(keys_b) == [None]
    # whoever writes to the store without a's secret: forged or unsigned values are misses, overwritten
    raw = redis.Redis.from_url(redis_url)
    raw.set(stored[0], encode_arrays({"keep": np.zeros(3, dtype=np.float32)}))
    out = get_or_compute(a, keys_a, _compute(1.0), codec=CODEC)
    assert out[0]["keep"].tolist() == [1.0, 1.0, 1.0] and a.stats().invalid == 1
    assert get_or_compute(a, keys_a, lambda idx: pytest.fail("repaired"), codec=CODEC)
    a.close()
    b.close()


def test_a_signed_value_moved_to_another_key_is_rejected():
    inner = MemoryCache()
    cache = SignedCache(inner, SECRET_A)
    k1, k2 = KeySpace("a", "m", "c").keys(["one", "two"])
    cache.put_many({k1: b"value one"})
    (stored1,) = list(inner._entries)
    inner.put_many({cache._signer.key(k2): inner.get_many([stored1])[0]})
    assert cache.get_many([k1, k2]) == [b"value one", None]
    assert inner.stats().invalid == 1


def test_a_short_secret_is_refused_and_the_secret_never_names_the_cache():
    with pytest.raises(ValueError, match="16 bytes"):
        SignedCache(MemoryCache(), "short")
    cache = open_cache(f"redis://127.0.0.1:1/0?secret={SECRET_A}&socket_timeout=0.1")
    assert SECRET_A not in cache.breaker.name
    assert cache.get_many(["k"]) == [None]  # still fail-open
    cache.close()


async def test_async_signed_cache_round_trip():
    cache = open_async_cache("memory://", secret=SECRET_A)
    assert isinstance(cache, AsyncSignedCache)
    await cache.aput_many({"pp:v1:a:m:c:p:x": b"v"})
    assert await cache.aget_many(["pp:v1:a:m:c:p:x", "pp:v1:a:m:c:p:y"]) == [b"v", None]
    await cache.aclose()
