"""Key layout: deterministic, versioned, isolated per component, Cluster-safe (no hash tags)."""

import pytest

from promptpress.cache.keys import KEY_PREFIX, KEY_VERSION, KeySpace, fingerprint, segment_digest, segment_key


def test_key_is_deterministic_prefixed_and_short():
    space = KeySpace("acme", "minilm-1a2b", "tc-1", "w512")
    key = space.key("The quick brown fox.")
    assert key == space.key("The quick brown fox.")
    assert key.startswith(f"{KEY_PREFIX}:{KEY_VERSION}:acme:minilm-1a2b:tc-1:w512:")
    assert len(key.rsplit(":", 1)[1]) == 32
    assert len(key) < 100
    assert key == segment_key("acme", "minilm-1a2b", "tc-1", "w512", "The quick brown fox.")


def test_every_component_and_the_text_change_the_key():
    base = ("acme", "m1", "c1", "p1")
    text = "segment"
    keys = {KeySpace(*base).key(text)}
    for i in range(4):
        changed = list(base)
        changed[i] = changed[i] + "x"
        keys.add(KeySpace(*changed).key(text))
    keys.add(KeySpace(*base).key(text + " "))
    keys.add(KeySpace(*base).key(text.upper()))
    assert len(keys) == 7


def test_keys_have_no_cluster_hash_tags_and_reject_unsafe_components():
    space = KeySpace("tenant-1", "m", "c")
    assert "{" not in space.key("{weird} text") and "}" not in space.key("{weird} text")
    for bad in ["{tag}", "a:b", "", "x" * 65, "spa ce", "ünï"]:
        with pytest.raises(ValueError, match="fingerprint"):
            KeySpace(bad, "m", "c")


def test_keys_batch_equals_single_and_unicode_text_is_fine():
    space = KeySpace("ns", "m", "c")
    segs = ["数据压缩", "emoji 🙂", "\ud800 lone surrogate"]
    assert space.keys(segs) == [space.key(s) for s in segs]
    assert len(set(space.keys(segs))) == 3
    with pytest.raises(TypeError):
        segment_digest(b"bytes")  # type: ignore[arg-type]


def test_fingerprint_is_order_independent_and_sized():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
    assert len(fingerprint(b"weights", size=4)) == 8
    KeySpace("ns", fingerprint(b"model weights"), "c", fingerprint({"window": 512}))
    with pytest.raises(TypeError):
        fingerprint({"x": object()})
