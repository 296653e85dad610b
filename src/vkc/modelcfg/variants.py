"""Model ids that name a variant: a model served with options, or an architecture's config class defaults.

Grammar (any ``--model`` of ``vkc collect`` / ``vkc model kernels``)::

    MODEL@KEY=VALUE[,KEY=VALUE...]   MODEL (a hub id, a bundled snapshot or defaults:ARCH) served with options
    defaults:ARCHITECTURE            the architecture's config class defaults (bundled, ``modelcfg/defaults/``)

KEY is one of :data:`SERVING_KEYS`, named after vLLM's own serve flags; the config is MODEL's,
unchanged: the options change how vLLM serves it, not what it is (the model trace reads them,
:func:`vkc.modeltrace.variants.serving_variant`).  A ``defaults:`` config is not a real checkpoint:
the config class's ``to_dict()`` with ``architectures`` and the dtype (bfloat16) set, values JSON
cannot hold (``Infinity``) left to the class's default; the model trace cuts its layers as for any
model.  Each bundled file records the class, the transformers version and what was dropped;
``bench/reach_sources.py defaults`` regenerates them.

A variant id is what the artifact header's command, ``collect_results.json`` and the reach map name,
so an artifact made from a variant trace regenerates from its header.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from vkc.errors import ModelError

__all__ = ["DEFAULTS_PREFIX", "SERVING_KEYS", "Variant", "defaults_ids", "fetch_variant", "is_variant",
           "parse_variant"]

DEFAULTS_PREFIX = "defaults:"
SEP = "@"
# key -> the values vkc traces (vLLM's flag: --kv-cache-dtype, --attention-backend, --speculative-config,
# --enable-lora with --max-lora-rank)
SERVING_KEYS: dict[str, tuple[str, ...]] = {
    "kv-cache-dtype": ("fp8", "int4_per_token_head", "int8_per_token_head", "fp8_per_token_head"),
    "attention-backend": ("FLASH_ATTN", "TRITON_ATTN", "TRITON_MLA"),
    "speculative": ("ngram",),
    # --enable-lora --max-lora-rank VALUE (vLLM's MaxLoRARanks), --max-loras 1 (vkc.modeltrace.lora)
    "lora": ("1", "8", "16", "32", "64", "128", "256", "320", "512"),
}


@dataclass(frozen=True)
class Variant:
    base: str                                   # the model the options apply to ("" for a bare defaults:ARCH)
    options: tuple[tuple[str, str], ...]        # (key, value) in the order given
    defaults: str | None = None                 # ARCHITECTURE of a defaults: base

    def option(self, key: str) -> str | None:
        return dict(self.options).get(key)


def is_variant(model: str) -> bool:
    return SEP in model or model.startswith(DEFAULTS_PREFIX)


def parse_variant(model: str) -> Variant | None:
    """The variant ``model`` names (None for a plain id); a malformed one is a :class:`ModelError`."""
    if not is_variant(model):
        return None
    base, sep, rest = model.partition(SEP)
    options: list[tuple[str, str]] = []
    if sep:
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            allowed = SERVING_KEYS.get(key)
            if not eq or allowed is None or value not in allowed:
                raise ModelError(f"unknown serving option {item!r} in model {model!r}",
                                 hint="MODEL@KEY=VALUE with " + "; ".join(
                                     f"{k}={'|'.join(v)}" for k, v in SERVING_KEYS.items()))
            if any(k == key for k, _ in options):
                raise ModelError(f"serving option {key!r} given twice in model {model!r}", hint="give it once")
            options.append((key, value))
        if not base:
            raise ModelError(f"no model before {SEP!r} in {model!r}", hint="MODEL@KEY=VALUE")
    arch = base[len(DEFAULTS_PREFIX):] if base.startswith(DEFAULTS_PREFIX) else None
    if arch is not None and arch not in defaults_ids():
        raise ModelError(f"no bundled config class defaults for {arch!r}",
                         hint="bundled: " + ", ".join(sorted(defaults_ids())))
    return Variant(base, tuple(options), arch)


def _dir() -> Any:
    return resources.files("vkc.modelcfg").joinpath("defaults")


@cache
def defaults_ids() -> tuple[str, ...]:
    """The architectures with bundled config class defaults, sorted."""
    return tuple(sorted(e.name[:-5] for e in _dir().iterdir() if e.name.endswith(".json")))


@cache
def _defaults_file(arch: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_dir().joinpath(f"{arch}.json").read_text(encoding="utf-8"))
    return data


def fetch_variant(model: str, fetch_base: Callable[[str], Any], make: Callable[..., Any]) -> Any:
    """The raw config of a variant id, built by ``make`` (:class:`vkc.modelcfg.fetch.RawConfig`, passed in:
    fetch imports this module): its base's config (``fetch_base`` for a hub id or snapshot, the bundled
    file for ``defaults:``), under the variant's id."""
    RawConfig = make

    v = parse_variant(model)
    assert v is not None
    if v.defaults is not None:
        d = _defaults_file(v.defaults)
        what = (f"{d['config_class']}() defaults (transformers {d['transformers_version']}), cut to layers "
                f"{d['cut'].get('kept_layers', 'all')} of {d['cut'].get('of', 'them')}; not a checkpoint")
        note = f"{v.base}: {what} (architectures={v.defaults}, bfloat16)"
        return RawConfig(model, json.loads(json.dumps(d["config"])), "snapshot",
                         (f"vkc:modelcfg/defaults/{v.defaults}.json: {what}",), (note,))
    raw = fetch_base(v.base)
    return RawConfig(model, dict(raw.config), raw.origin, tuple(raw.sources), tuple(raw.warnings))
