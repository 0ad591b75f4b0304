"""The advisor on the four rigs the issue names (2x24 GB, 4x8 GB with one x4 link, unified 128 GB, no GPU),
checked against expectations computed by hand below.

The model used throughout (GGUF metadata written out): 32 layers, 32 heads, 8 KV heads, embedding 4096,
vocab 32000, trained context 8192, a 4096 MiB file. So, with f16 K and V:
  KV per token  = 32 layers x (8 x 128 K + 8 x 128 V) x 2 bytes = 131072 B = 0.125 MiB
  compute       = 32000 x 512 x 4 B (logits) + 4096 x 512 x 16 B (activations) + 16 MiB = 62.5 + 32 + 16 = 110.5 MiB
  fixed         = weights 4096 + compute 110.5 = 4206.5 MiB
Every GPU keeps the scheduler's reserve of 1024 MiB free.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from llmhost.advisor.facts import Facts, Generation, ModelFacts
from llmhost.advisor.report import build
from llmhost.config import AdvisorSettings, ModelProfile
from llmhost.engines.memory import MIB
from llmhost.models.gguf_meta import GgufMeta
from llmhost.telemetry.fake_gpus import FakeGpu, FakeGpus, rig

META = GgufMeta(
    architecture="llama",
    name="test-8b",
    context_length=8192,
    embedding_length=4096,
    block_count=32,
    head_count=32,
    head_count_kv=8,
    parameter_count=8_000_000_000,
    quantization="Q4_0",
    chat_template=None,
    pooling_type=None,
    file_size=4096 * MIB,
    vocab_size=32000,
)


def model(
    name: str = "m",
    *,
    loaded: bool = False,
    charges: dict[str, float] | None = None,
    source: str = "directory",
    num_ctx: int | None = None,
    **profile: Any,
) -> ModelFacts:
    return ModelFacts(
        name=name,
        source=source,
        file_size=4096 * MIB,
        meta=META,
        profile=ModelProfile(**profile),
        ollama_num_ctx=num_ctx,
        loaded=loaded,
        charges_mib=charges or {},
        charges_reported=charges is not None,
    )


def facts(rig_name: str | list[FakeGpu], *models: ModelFacts, measured: bool = False, host: float = 32768) -> Facts:
    return Facts(
        gpus=tuple(FakeGpus(rig(rig_name)).sample()),
        host_total_mib=host,
        reserve_mib=1024,
        models=models,
        settings=AdvisorSettings(),
        measured=measured,
    )


def report(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return build(facts(*args, **kwargs), now=0).to_dict()


def sets(body: dict[str, Any], index: int = 0) -> dict[str, dict[str, Any]]:
    return {s["label"]: s for s in body["fit"][index]["sets"]}


def kinds(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["kind"], r["subject"]) for r in body["recommendations"]]


def points(body: dict[str, Any]) -> dict[str, float | None]:
    return {part["key"]: part["points"] for part in body["score"]["parts"]}


# 2 x 24 GB ---------------------------------------------------------------------------------------------------


def test_2x24gb_a_model_split_over_both_gpus_that_fits_on_one() -> None:
    body = report("2x24gb", model(ctx=8192, parallel=1))
    need = body["fit"][0]["need"]
    # 8192 cells x 0.125 MiB = 1024 MiB of KV; 4206.5 + 1024 = 5230.5 MiB in all
    assert (need["kv_mib"], need["total_mib"], need["kv_mib_per_token"]) == (1024.0, 5230.5, 0.125)
    # q8_0: 34/32 bytes per element -> 544 MiB (frees 480); q4_0: 18/32 -> 288 MiB (frees 736)
    assert (need["kv_q8_0_frees_mib"], need["kv_q4_0_frees_mib"]) == (480.0, 736.0)
    assert need["flash_attention_frees_mib"] == 0.0  # auto: llama.cpp turns it on where supported

    fit = sets(body)
    assert list(fit) == ["GPU 0", "GPU 1", "GPU 0+1", "CPU (host memory)"]
    single, pair, host = fit["GPU 0"], fit["GPU 0+1"], fit["CPU (host memory)"]
    # one GPU: 24576 - 1024 = 23552 MiB; (23552 - 4206.5) / 0.125 = 154764 tokens, per slot capped at 8192
    assert single["fits"] and single["capacity_mib"] == {"gpu0": 23552.0}
    assert (single["free_after_mib"], single["context_tokens"], single["context_per_slot"]) == (18321.5, 154764, 8192)
    assert (single["split_mode"], single["main_gpu"], single["tensor_split"]) == ("none", 0, None)
    # both: proportional to memory, 0.5 each; 23552 / 0.5 = 47104; (47104 - 4206.5) / 0.125 = 343180
    assert pair["tensor_split"] == [0.5, 0.5] and pair["need_mib"] == {"gpu0": 2615.2, "gpu1": 2615.2}
    assert (pair["free_after_mib"], pair["context_tokens"]) == (41873.5, 343180)
    # host: 32768 - 1024 = 31744; (31744 - 4206.5) / 0.125 = 220300
    assert host["context_tokens"] == 220300 and host["note"] is None

    # configured without a split: llama.cpp's default spreads it evenly over both GPUs
    assert body["fit"][0]["configured"] == {
        "devices_mib": {"gpu0": 2615.2, "gpu1": 2615.2},
        "fits": True,
        "engine_mib": None,
    }
    assert kinds(body) == [("split_fits_on_one_gpu", "m")]
    (rec,) = body["recommendations"]
    evidence = {e["what"]: (e["value"], e["source"]) for e in rec["evidence"]}
    assert evidence["GPUs in use"] == ([0, 1], "config")
    assert evidence["needs MiB (configured context)"] == (5230, "estimate")  # round(5230.5): to even
    assert evidence["GPU 0 capacity MiB"] == (23552, "nvml")
    assert "main_gpu: 0" in rec["action"]
    # offline: GPU use cannot be judged; placement lost all 20 (its one split model fits on one GPU)
    assert points(body) == {
        "pcie": 20,
        "placement": 0,
        "gpu_use": None,
        "thermal_power": 15,
        "memory_fit": 20,
        "context": 10,
    }
    assert body["score"]["value"] == round(100 * 65 / 85)  # 76


def test_2x24gb_measured_one_gpu_in_use_and_one_idle() -> None:
    loaded = model(ctx=8192, loaded=True, charges={"gpu0": 5000.0}, split_mode="none", main_gpu=0)
    body = report("2x24gb", loaded, measured=True)
    assert kinds(body) == [("idle_gpu", "GPU 1")]
    evidence = {e["what"]: e["value"] for e in body["recommendations"][0]["evidence"]}
    assert evidence == {
        "utilisation %": 0.0,
        "memory free MiB": 24276.0,
        "idle power W": 30.0,
        "loaded models on it": 0,
    }
    # GPU use: 1 of 2 GPUs idle -> 15 x 1/2 = 7.5; placement: no split model -> not applicable
    assert points(body) == {
        "pcie": 20,
        "placement": None,
        "gpu_use": 7.5,
        "thermal_power": 15,
        "memory_fit": 20,
        "context": 10,
    }
    assert body["score"]["value"] == round(100 * 72.5 / 80)  # 90.6 -> 91
    assert body["fit"][0]["configured"]["engine_mib"] == {"gpu0": 5000.0}


# 4 x 8 GB, one card at x4 ----------------------------------------------------------------------------------


def test_4x8gb_x4_link_and_a_model_that_needs_two_gpus() -> None:
    body = report("4x8gb-x4", model(ctx=8192, parallel=4))
    # 4 slots x 8192 = 32768 cells x 0.125 = 4096 MiB KV; 4206.5 + 4096 = 8302.5 MiB
    assert body["fit"][0]["need"]["total_mib"] == 8302.5
    fit = sets(body)
    assert len(fit) == 4 + 6 + 4 + 1 + 1  # every combination of 4 GPUs, and the host
    single, pair, four = fit["GPU 0"], fit["GPU 0+3"], fit["GPU 0+1+2+3"]
    # one GPU: 8192 - 1024 = 7168 < 8302.5; its context: (7168 - 4206.5) / 0.125 = 23692 tokens, 5923 per slot
    assert not single["fits"] and single["free_after_mib"] == -1134.5
    assert (single["context_tokens"], single["context_per_slot"]) == (23692, 5923)
    # two: 4151.25 each; 7168 / 0.5 = 14336; (14336 - 4206.5) / 0.125 = 81036 -> 20259 per slot, capped at 8192
    assert pair["fits"] and pair["tensor_split"] == [0.5, 0.0, 0.0, 0.5]
    assert (pair["context_tokens"], pair["context_per_slot"]) == (81036, 8192)
    assert four["tensor_split"] == [0.25, 0.25, 0.25, 0.25] and four["free_after_mib"] == 4 * 7168 - 8302.5

    assert kinds(body) == [("pcie_link_below_max", "GPU 3")]  # the split cannot be avoided: no single GPU fits
    rec = body["recommendations"][0]
    assert rec["title"] == "GPU 3's PCIe link runs at 25% of its maximum"
    assert [(e["what"], e["value"]) for e in rec["evidence"][:2]] == [
        ("link now", "Gen 4 x4"),
        ("link maximum", "Gen 4 x16"),
    ]
    assert "7.88 GB/s instead of 31.5 GB/s" in rec["effect"]  # 1.969 GB/s per Gen 4 lane x 4 and x 16
    # PCIe: (1 + 1 + 1 + 0.25) / 4 x 20 = 16.25
    assert points(body)["pcie"] == 16.25
    assert body["score"]["value"] == round(100 * (16.25 + 20 + 15 + 20 + 10) / 85)  # 95.6 -> 96
    assert [g["link_share"] for g in body["gpus"]] == [1.0, 1.0, 1.0, 0.25]


def test_4x8gb_pinned_to_one_gpu_does_not_fit_and_q8_0_would_fix_it() -> None:
    body = report("4x8gb-x4", model(ctx=8192, parallel=4, split_mode="none", main_gpu=0))
    assert body["fit"][0]["configured"] == {"devices_mib": {"gpu0": 8302.5}, "fits": False, "engine_mib": None}
    assert kinds(body)[0] == ("does_not_fit", "m")
    rec = body["recommendations"][0]
    assert rec["severity"] == "high"
    # short by 8302.5 - 7168 = 1134.5 MiB; q8_0 KV frees 4096 - 2176 = 1920 MiB: enough
    assert "q8_0 (frees 1920 MiB, enough)" in rec["action"]
    assert points(body)["memory_fit"] == 0


def test_a_busy_link_below_its_generation_and_an_idle_one_that_is_not() -> None:
    busy = FakeGpu(pcie_gen=3, utilization_percent=90.0)
    idle = FakeGpu(pcie_gen=1, utilization_percent=0.0)  # links drop their generation when idle: that is normal
    body = report([busy, idle])
    assert kinds(body) == [("pcie_link_below_max", "GPU 0")]
    assert body["gpus"][0]["link_share"] == pytest.approx(0.985 / 1.969)
    assert body["gpus"][1]["link_share"] == 1.0


# unified 128 GB ----------------------------------------------------------------------------------------------


def test_unified_128gb_counts_its_memory_once_and_reads_three_contexts() -> None:
    entry = model(ctx=16384, parallel=1, source="ollama", num_ctx=32768)
    body = report("unified-128gb", entry, host=65536)
    fit = sets(body)
    assert list(fit) == ["GPU 0", "CPU (host memory)"]
    # the GPU's 131072 MiB are the host's memory: the host option gets that figure, not the host's 65536 on top
    assert fit["GPU 0"]["capacity_mib"] == {"gpu0": 130048.0}
    assert fit["CPU (host memory)"]["capacity_mib"] == {"host": 130048.0}
    assert fit["CPU (host memory)"]["note"] == "the same memory as GPU 0 (unified)"
    assert body["host"]["capacity_mib"] == 130048.0
    assert "unified" in fit["GPU 0"]["note"]

    assert body["contexts"] == [
        {
            "model": "m",
            "true_context": 8192,
            "ollama_num_ctx": 32768,
            "ctx_per_slot": 16384,
            "slots": 1,
            "total_context": 16384,
        }
    ]
    assert kinds(body) == [("context_beyond_model", "m"), ("context_below_ollama", "m")]
    beyond = body["recommendations"][0]
    assert "Frees 1024 MiB" in beyond["effect"]  # (16384 - 8192) x 1 slot x 0.125 MiB
    assert {(e["what"], e["value"], e["source"]) for e in beyond["evidence"][:2]} == {
        ("ctx per slot", 16384, "config"),
        ("true context", 8192, "gguf"),
    }
    # no PCIe (unified), one GPU (no placement), power without an enforced limit; the context part lost its 10
    assert points(body) == {
        "pcie": None,
        "placement": None,
        "gpu_use": None,
        "thermal_power": 15,
        "memory_fit": 20,
        "context": 0,
    }
    assert body["score"]["value"] == round(100 * 35 / 45)  # 77.8 -> 78


# no GPU ------------------------------------------------------------------------------------------------------


def test_no_gpu_short_slots_static_then_measured() -> None:
    body = report("none", model(ctx=1024, parallel=4))
    assert body["gpus"] == [] and list(sets(body)) == ["CPU (host memory)"]
    host = sets(body)["CPU (host memory)"]
    # 4 x 1024 cells x 0.125 = 512 MiB KV -> 4718.5 MiB; (31744 - 4206.5) / 0.125 = 220300 tokens; 55075 per slot
    assert host["fits"] and host["free_after_mib"] == 31744 - 4718.5
    assert (host["context_tokens"], host["context_per_slot"]) == (220300, 8192)
    assert kinds(body) == [("slots_short_of_context", "m")]
    rec = body["recommendations"][0]
    assert rec["severity"] == "low" and "parallel: 2 with ctx: 2048" in rec["action"]
    assert points(body) == {
        "pcie": None,
        "placement": None,
        "gpu_use": None,
        "thermal_power": None,
        "memory_fit": 20,
        "context": 0,
    }
    assert body["score"]["value"] == round(100 * 20 / 30)  # 67

    long = Generation(started_at=0, duration_s=1, prompt_tokens=900, completion_tokens=100, tokens_per_second=20)
    measured = replace(model(ctx=1024, parallel=2), generations=(long, long))
    body = report("none", measured, measured=True)
    rec = body["recommendations"][0]
    # 900 + 100 = 1000 tokens per request >= 0.8 x 1024: close to being cut, measured
    assert rec["kind"] == "slots_short_of_context" and rec["severity"] == "medium"
    assert "parallel: 1 with ctx: 2048" in rec["action"]
    evidence = {e["what"]: (e["value"], e["source"]) for e in rec["evidence"]}
    assert evidence["p95 tokens per request (prompt + completion)"] == (1000, "telemetry")


# heat, power, placement mistakes -------------------------------------------------------------------------------


def test_hot_and_power_limited_gpu() -> None:
    hot = FakeGpu(temperature_c=86.0, power_draw_w=345.0, power_limit_w=350.0)
    body = report([hot], model(ctx=4096))
    assert kinds(body) == [("thermal_throttling", "GPU 0"), ("power_limited", "GPU 0")]
    assert body["recommendations"][0]["severity"] == "high"  # 86 >= 80 + 5
    assert points(body)["thermal_power"] == 0


def test_flash_attention_off_costs_the_attention_scores() -> None:
    body = report("none", model(ctx=8192, flash_attn="off"))
    need = body["fit"][0]["need"]
    # 8192 cells x 512 ubatch x 32 heads x 4 bytes = 512 MiB
    assert need["attention_scores_mib"] == 512.0 and need["flash_attention_frees_mib"] == 512.0
    assert need["total_mib"] == 5230.5 + 512


def test_engine_on_the_cpu_although_configured_for_a_gpu_and_cpu_while_a_gpu_fits() -> None:
    on_cpu = model("a", ctx=4096, loaded=True, charges={"host": 4800.0}, split_mode="none", main_gpu=0)
    cpu_only = model("b", ctx=4096, gpu_layers=0)
    body = report("2x24gb", on_cpu, cpu_only, measured=True)
    assert ("engine_on_cpu", "a") in kinds(body) and ("cpu_while_gpu_fits", "b") in kinds(body)
    assert points(body)["memory_fit"] == 0  # both models flagged
