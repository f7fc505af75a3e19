"""ViLBERT's 12-in-1 task model against tests/fixtures/vilbert_tasks (vilbert-multi-task's
``VILBertForVLTasks`` with task tokens, random weights): every head, both streams, both poolers."""

import warnings

import pytest
import torch
from safetensors.torch import load_file

import polymodal
from polymodal.models.vilbert_tasks import TASKS, ViLBertTask
from polymodal.weights import describe

OURS = {"vil_prediction": "vqa", "vil_prediction_gqa": "gqa", "vil_logit": "score", "vil_binary_prediction": "pair",
        "vil_tri_prediction": "entail", "vision_prediction": "region_logits", "vision_logit": "region",
        "linguisic_prediction": "mlm_logits", "linguisic_logit": "word", "sequence_output_t": "text",
        "sequence_output_v": "image", "pooled_output_t": "pooled_text", "pooled_output_v": "pooled_image"}


@pytest.fixture(scope="module")
def loaded(fixtures):
    folder = fixtures / "vilbert_tasks"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the q_dense tensors the reference never uses
        model = polymodal.load(folder)
    return folder, model, load_file(folder / "inputs.safetensors"), load_file(folder / "outputs.safetensors")


def _run(model, i, **changes):
    i = {**i, **changes}
    with torch.no_grad():
        return model(i["input_txt"], i["image_feat"], i["image_loc"], i["attention_mask"], i["image_attention_mask"],
                     i["token_type_ids"], i["task_ids"])


def test_every_head_matches_the_reference(loaded):
    folder, model, i, expected = loaded
    assert describe(folder)["layout"] == "vilbert-tasks"
    assert isinstance(model, ViLBertTask) and model.config.trunk.task_tokens == 20
    out = _run(model, i)
    assert sorted(OURS) == sorted(expected)
    out["pair"] = out["pair"][::2]  # each pair's logits sit on both its rows
    for theirs, ours in OURS.items():
        torch.testing.assert_close(out[ours], expected[theirs], rtol=1e-4, atol=1e-5, msg=lambda m, k=theirs: f"{k}: {m}")


def test_the_task_token_matters_and_is_checked(loaded):
    _, model, i, expected = loaded
    other = _run(model, i, task_ids=torch.tensor([[9], [12]]))
    assert (other["vqa"][0] - expected["vil_prediction"][0]).abs().max() > 1e-3  # task 9 instead of 1 on row 0
    torch.testing.assert_close(other["vqa"][1], expected["vil_prediction"][1], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="task ids must lie in 0..19"):
        _run(model, i, task_ids=torch.tensor([[1], [25]]))
    with pytest.raises(ValueError, match="pass task_ids"):
        model(i["input_txt"], i["image_feat"], i["image_loc"])
    assert TASKS[1] == ("VQA", "vqa") and TASKS[11] == ("refcocog", "region") and TASKS[12][1] == "pair"
