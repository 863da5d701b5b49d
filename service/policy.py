"""What gets compressed in a proxied request: the policy, its per-request overrides, and the texts.

A `Policy` comes from the settings and can be overridden per request by headers
(``X-Promptpress-Compress: on|off``, ``X-Promptpress-Rate``, ``X-Promptpress-Target-Tokens``,
``X-Promptpress-Min-Tokens``, ``X-Promptpress-Roles``) and by the body field ``"promptpress": {...}``
(which wins over headers and is removed before forwarding). Bad override values are a 400, never
silently ignored.

`chat_slots`/`prompt_slots` find the texts a policy selects (message strings and text content parts of
the selected roles; completions prompts given as text), skipping those under ``min_tokens``.
Non-text parts and token-id prompts are never touched. `apply_texts` writes compressed texts back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from promptpress.compressor import CompressOptions, OptionsError
from promptpress.compressor.tokens import count_tokens

from .errors import APIError
from .openai_models import MAX_TARGET_TOKENS, PromptpressOptions
from .settings import Settings

HEADER_PREFIX = "x-promptpress-"
_ON = {"on", "true", "1", "yes"}
_OFF = {"off", "false", "0", "no"}


@dataclass(frozen=True)
class Policy:
    enabled: bool
    roles: frozenset[str]
    min_tokens: int
    options: CompressOptions
    question: str = "auto"  # "auto" (found in the request: service/question.py), "off", or the question

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        options = CompressOptions().with_overrides(
            rate=settings.rate,
            target_tokens=settings.target_tokens,
            force_tokens=tuple(settings.force_tokens),
        )
        question = getattr(settings, "question", "auto")
        return cls(
            settings.compress, frozenset(settings.compress_roles), settings.min_tokens, options, question
        )


def header_name(name: str) -> str:
    """``min-tokens`` -> ``X-Promptpress-Min-Tokens``: how messages name a header."""
    return "X-Promptpress-" + "-".join(part.capitalize() for part in name.split("-"))


def _bounds(low: float, high: float) -> str:
    if math.isinf(low):
        return f"at most {high:.0f}"
    return f"at least {low:.0f}" if math.isinf(high) else f"in [{low:g}, {high:g}]"


def _header_number(headers: Mapping[str, str], name: str, kind: type, low: float, high: float) -> Any:
    raw = headers.get(HEADER_PREFIX + name)
    if raw is None:
        return None
    try:
        value = kind(raw.strip())
    except ValueError:
        raise APIError(
            400, f"header {header_name(name)} must be a number, got {raw!r}", code="invalid_header"
        ) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise APIError(400, f"header {header_name(name)} must be finite, got {raw!r}", code="invalid_header")
    if not low <= value <= high:
        raise APIError(
            400,
            f"header {header_name(name)} must be {_bounds(low, high)}, got {raw!r}",
            code="invalid_header",
        )
    return value


def _overrides_from_headers(headers: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    switch = headers.get(HEADER_PREFIX + "compress")
    if switch is not None:
        word = switch.strip().lower()
        if word not in _ON | _OFF:
            raise APIError(
                400,
                f"header X-Promptpress-Compress must be 'on' or 'off', got {switch!r}",
                code="invalid_header",
            )
        out["compress"] = word in _ON
    for name, key, kind, low, high in (
        ("rate", "rate", float, -math.inf, math.inf),  # (0, 1]: checked with the body's rate
        ("target-tokens", "target_tokens", int, -math.inf, MAX_TARGET_TOKENS),  # >= 1: the options
        ("min-tokens", "min_tokens", int, 0, math.inf),
    ):
        value = _header_number(headers, name, kind, low, high)
        if value is not None:
            out[key] = value
    question = headers.get(HEADER_PREFIX + "question")
    if question is not None and question.strip():
        out["question"] = question.strip()
    roles = headers.get(HEADER_PREFIX + "roles")
    if roles is not None:
        out["roles"] = [r.strip() for r in roles.split(",") if r.strip()]
        if not out["roles"]:
            raise APIError(
                400, f"header X-Promptpress-Roles names no role, got {roles!r}", code="invalid_header"
            )
    return out


def budget_overrides(
    rate: float | None, target_tokens: int | None, options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`CompressOptions` overrides for a request's budget: its `rate` and `target_tokens` over its other
    `options`. A rate given without a target (here or in `options`) beats the default target: the
    settings' ``target_tokens`` is dropped rather than silently winning over the rate asked for."""
    out = dict(options or {})
    if rate is not None:
        out["rate"] = rate
        out.setdefault("target_tokens", target_tokens)
    if target_tokens is not None:
        out["target_tokens"] = target_tokens
    return out


def resolve_policy(base: Policy, headers: Mapping[str, str], body: PromptpressOptions | None) -> Policy:
    """The policy for one request: settings, then headers, then the body field."""
    # the X-Promptpress-* headers in one pass (most requests have none)
    ours = {k.lower(): v for k, v in headers.items() if k[:14].lower() == HEADER_PREFIX}
    overrides = _overrides_from_headers(ours) if ours else {}
    if body is not None:
        overrides.update(body.model_dump(exclude_none=True))
    if not overrides:
        return base
    min_tokens = overrides.pop("min_tokens", base.min_tokens)
    if min_tokens < 0:
        raise APIError(
            400,
            f"min_tokens must be >= 0, got {min_tokens}",
            param="promptpress.min_tokens",
            code="invalid_compression_option",
        )
    policy = replace(
        base,
        enabled=overrides.pop("compress", base.enabled),
        roles=frozenset(overrides.pop("roles", base.roles)),
        min_tokens=min_tokens,
        question=overrides.pop("question", base.question),
    )
    overrides = budget_overrides(overrides.pop("rate", None), overrides.pop("target_tokens", None), overrides)
    if overrides:
        try:
            policy = replace(policy, options=base.options.with_overrides(**overrides))
        except OptionsError as exc:
            raise APIError(400, str(exc), code="invalid_compression_option") from exc
    return policy


@dataclass(frozen=True)
class Slot:
    """Where a text sits in the request body: (message, part) for chat, (prompt index,) for completions."""

    path: tuple[int, ...]
    text: str
    tokens: int


def _eligible(text: str, min_tokens: int) -> int | None:
    if not text.strip():
        return None
    if len(text) * 4 < min_tokens:  # a token covers >= 1 byte and a char <= 4 bytes: surely too short
        return None
    tokens = count_tokens(text)
    return tokens if tokens >= min_tokens else None


def chat_slots(messages: list[Any], policy: Policy) -> list[Slot]:
    slots: list[Slot] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in policy.roles:
            continue
        content = message.get("content")
        candidates: list[tuple[tuple[int, ...], str]]
        if isinstance(content, str):
            candidates = [((i,), content)]
        elif isinstance(content, list):
            candidates = [
                ((i, j), part["text"])
                for j, part in enumerate(content)
                if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
            ]
        else:
            continue
        for path, text in candidates:
            tokens = _eligible(text, policy.min_tokens)
            if tokens is not None:
                slots.append(Slot(path, text, tokens))
    return slots


def prompt_slots(prompt: Any, policy: Policy) -> list[Slot]:
    texts: list[tuple[tuple[int, ...], str]] = [((), prompt)] if isinstance(prompt, str) else []
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        texts = [((i,), p) for i, p in enumerate(prompt)]
    slots = []
    for path, text in texts:
        tokens = _eligible(text, policy.min_tokens)
        if tokens is not None:
            slots.append(Slot(path, text, tokens))
    return slots


def apply_chat(messages: list[Any], slots: list[Slot], texts: list[str]) -> None:
    for slot, text in zip(slots, texts, strict=True):
        message = messages[slot.path[0]]
        if len(slot.path) == 1:
            message["content"] = text
        else:
            message["content"][slot.path[1]]["text"] = text


def apply_prompt(body: dict[str, Any], slots: list[Slot], texts: list[str]) -> None:
    for slot, text in zip(slots, texts, strict=True):
        if slot.path:
            body["prompt"][slot.path[0]] = text
        else:
            body["prompt"] = text
