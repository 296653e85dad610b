"""A ``defaults:ARCH`` model (vkc's bundled config class defaults) has no hub page: its header names the bundled file."""
from __future__ import annotations

from vkc.verify.rubric import _model_header_reason

HEAD = "# MODEL_NAME: {model}\n# config sources:\n#   {source}\n"


def test_bundled_defaults_need_their_bundled_source_line():
    ok = HEAD.format(model="defaults:BeamForCausalLM",
                     source="vkc:modelcfg/defaults/BeamForCausalLM.json: BeamConfig() defaults; not a checkpoint")
    assert _model_header_reason(ok) is None
    bare = HEAD.format(model="defaults:BeamForCausalLM", source="nothing")
    assert "gives no" in (_model_header_reason(bare) or "")
    hub = HEAD.format(model="meta-llama/Llama-3.1-8B-Instruct", source="vkc:modelcfg/defaults/X.json")
    assert "gives no" in (_model_header_reason(hub) or "")
