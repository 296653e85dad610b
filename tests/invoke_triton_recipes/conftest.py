"""Model dims for the recipe tests (bundled snapshots, offline) and one shared trace run."""
from __future__ import annotations

import pytest

from vkc.invoke.common import budget_bytes
from vkc.invoke.core.dims import ModelDims

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
GPT_OSS = "openai/gpt-oss-120b"
QWEN_CODER = "Qwen/Qwen3-Coder-480B-A35B-Instruct"
DEEPSEEK = "deepseek-ai/DeepSeek-V3"
MAIN_MODELS = (LLAMA, GPT_OSS, QWEN_CODER)
BUDGET = budget_bytes()

_dims: dict[str, dict] = {}


def dims(model_id: str) -> dict:
    if model_id not in _dims:
        from vkc.modelcfg import load_model

        _dims[model_id] = ModelDims.from_config(load_model(model_id, offline=True)).recipe_dict()
    return _dims[model_id]


@pytest.fixture(scope="session")
def model_dims_of():
    return dims
