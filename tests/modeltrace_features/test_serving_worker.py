"""The featured worker's step wrapper (no vLLM: the feature functions are stand-ins)."""
from __future__ import annotations

from vkc.modeltrace import serving, serving_worker


class Model:
    def compute_logits(self, hidden):
        return f"logits({hidden})"


def _forward(events):
    def run_step(ctx, step):
        ctx["model"].compute_logits("h")
        events.append({"index": len(events), "name": "forward"})
        return {"id": step["id"], "events": events}
    return run_step


def test_features_run_on_the_forwards_logits(monkeypatch):
    seen = {}
    monkeypatch.setattr(serving, "sampler_state", lambda vc, mix="serving": {"use_v2": True, "use_flashinfer": False})

    def run_features(state, step, logits, features, forward=None, ctx=None):
        seen["logits"], seen["features"] = logits, features
        return {"s1000000": {"runs": [[1, 2]]}}, {}

    monkeypatch.setattr(serving, "run_features", run_features)
    model = Model()
    res = serving_worker._with_features(_forward([]), ("sampler",))({"model": model, "vllm_config": None},
                                                                   {"id": "decode"})
    assert seen == {"logits": "logits(h)", "features": ("sampler",)}     # no forward: no hidden states passed
    assert res["features"]["runner"]["contents"] == {"s1000000": {"runs": [[1, 2]]}}
    assert "compute_logits" not in vars(model)          # the model is left as it was


def test_a_failing_feature_keeps_the_forward_and_says_so(monkeypatch):
    events: list = []
    monkeypatch.setattr(serving, "sampler_state", lambda vc, mix="serving": {"use_v2": True, "use_flashinfer": False})

    def run_features(state, step, logits, features, forward=None, ctx=None):
        events.append({"index": len(events), "name": "sampler-half-done"})
        raise RuntimeError("vLLM changed")

    monkeypatch.setattr(serving, "run_features", run_features)
    res = serving_worker._with_features(_forward(events), ("sampler",))({"model": Model(), "vllm_config": None},
                                                                       {"id": "decode"})
    assert [e["name"] for e in res["events"]] == ["forward"]
    assert res["features"]["error"] == "RuntimeError: vLLM changed" and "runner" not in res["features"]


class Module(Model):
    def forward(self, x):
        return f"hidden({x})"


def test_the_forwards_hidden_states_reach_the_features(monkeypatch):
    seen = {}
    monkeypatch.setattr(serving, "sampler_state", lambda vc, mix="serving": {"use_v2": True, "use_flashinfer": False,
                                                                           "mix": mix})

    def run_features(state, step, logits, features, forward=None, ctx=None):
        seen["mix"], seen["forward"] = state["mix"], forward
        return {}, {}

    def run_step(ctx, step):
        ctx["model"].compute_logits(ctx["model"].forward("x"))
        return {"id": step["id"], "events": []}

    monkeypatch.setattr(serving, "run_features", run_features)
    model = Module()
    serving_worker._with_features(run_step, ("sampler",), "mixed")({"model": model, "vllm_config": None}, {"id": "p"})
    assert seen["mix"] == "mixed" and seen["forward"][0] == "hidden(x)"
    assert seen["forward"][1]("y") == "logits(y)"                 # the model's own compute_logits
    assert "forward" not in vars(model) and "compute_logits" not in vars(model)
