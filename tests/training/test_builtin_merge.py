"""The inference path's LoRA merge (no peft) builds exactly what peft's merge_and_unload builds."""

import torch

from promptpress.compressor import builtin
from promptpress.compressor.assets import resolve


def test_merge_without_peft_equals_peft_merge_and_unload():
    from peft import get_peft_model
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoModelForTokenClassification

    from promptpress.compressor.training.fit import lora_config

    meta_path, meta = builtin.read_meta("minilm-qmsum-v0")
    weights = meta_path.with_suffix(".safetensors")
    ours = builtin.merged_model(meta, weights)[0].state_dict()

    base = AutoModelForTokenClassification.from_pretrained(resolve(meta["base"]), num_labels=2)
    model = get_peft_model(base, lora_config(int(meta["lora_r"]), meta["lora_targets"]))
    set_peft_model_state_dict(model, load_file(str(weights)))
    reference = model.merge_and_unload().state_dict()

    assert set(ours) == set(reference)
    pristine = AutoModelForTokenClassification.from_pretrained(resolve(meta["base"]), num_labels=2)
    pristine_state = pristine.state_dict()
    changed = [
        k
        for k in reference
        if not k.startswith("classifier") and not torch.equal(reference[k], pristine_state[k])
    ]
    assert changed, "the reference merge changed nothing: the comparison would be vacuous"
    for name, tensor in reference.items():
        assert torch.equal(ours[name], tensor), name


def test_merge_rejects_weights_for_another_encoder(tmp_path):
    import pytest
    from safetensors.torch import load_file

    meta_path, meta = builtin.read_meta("minilm-qmsum-v0")
    adapter = load_file(str(meta_path.with_suffix(".safetensors")))
    model, _ = builtin.merged_model(meta, meta_path.with_suffix(".safetensors"))
    adapter["base_model.model.bert.encoder.layer.9.output.dense.lora_A.weight"] = torch.zeros(16, 1536)
    adapter["base_model.model.bert.encoder.layer.9.output.dense.lora_B.weight"] = torch.zeros(384, 16)
    with pytest.raises(builtin.AssetError, match="do not fit"):
        builtin.merge_lora(model, adapter, 2.0)
