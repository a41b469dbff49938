"""Image chunks: an image takes the positions Qwen3-VL would give it, and bad counts fail
as the Tinker server fails them."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from tinker import BadRequestError, types

from tinker_offline.images import PLACEHOLDER_TOKEN, qwen3_vl_image_tokens

from emotion_task import ANSWER_PREFIX, LABELS, SYSTEM_PROMPT, build_prompt_tokens
from token_set import label_token_ids
from engine_support import assert_same_tensors, client, tokenizer  # noqa: F401 (fixtures)


def image_bytes(width: int, height: int, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 30, 200)).save(buffer, format=fmt)
    return buffer.getvalue()



def multimodal(tokenizer, width=640, height=480, expected_tokens=300, fmt="png"):
    before = tokenizer.encode("Look at this picture:", add_special_tokens=False)
    after = build_prompt_tokens(tokenizer, SYSTEM_PROMPT, "How does it make you feel?", ANSWER_PREFIX)
    image = types.ImageChunk(data=image_bytes(width, height, fmt.upper()), format=fmt, expected_tokens=expected_tokens)
    chunks = [types.EncodedTextChunk(tokens=before), image, types.EncodedTextChunk(tokens=after)]
    return types.ModelInput(chunks=chunks), before, after


def set_request(model_input, ids):
    """[T, K] label ids on the last row, weight 1 there."""
    T = model_input.length
    target_tokens = np.zeros((T, len(ids)), dtype=np.int64)
    target_tokens[T - 1] = ids
    weights = np.zeros((T, len(ids)), dtype=np.float32)
    weights[T - 1] = 1.0
    return types.Datum(model_input=model_input, loss_fn_inputs={"target_tokens": target_tokens, "weights": weights})


def set_logprobs(client, model_input, ids) -> torch.Tensor:
    """The [T, K] logprobs of one forward on ``set_request(model_input, ids)``."""
    [output] = client.forward([set_request(model_input, ids)], "cross_entropy").result().loss_fn_outputs
    return output["logprobs"].to_torch()


@pytest.mark.parametrize(
    "height, width, tokens",
    # Qwen3-VL: sides rounded to multiples of 32, area kept within [65536, 16777216] pixels,
    # one position per 32 x 32 block.
    [(480, 640, 300), (224, 224, 64), (100, 100, 64), (300, 480, 135), (1080, 1920, 2040), (32, 6400, 200)],
)
def test_qwen3_vl_position_counts(height, width, tokens):
    assert qwen3_vl_image_tokens(height, width) == tokens


def test_image_positions_count_toward_T_and_the_scored_row_is_T_minus_1(client, tokenizer):
    model_input, before, after = multimodal(tokenizer)
    T = model_input.length
    assert T == len(before) + 300 + len(after)
    ids = label_token_ids(tokenizer, LABELS)
    logprobs = set_logprobs(client, model_input, ids)
    assert list(logprobs.shape) == [T, len(ids)]
    # The image occupies exactly 300 placeholder positions: the same ids as text give the same rows.
    as_text = types.ModelInput.from_ints(before + [PLACEHOLDER_TOKEN] * 300 + after)
    reference = set_logprobs(client, as_text, ids)
    torch.testing.assert_close(logprobs, reference)
    # Row T-1 scores the token after the last text chunk: one token short, and it would differ.
    shorter = types.ModelInput.from_ints(before + [PLACEHOLDER_TOKEN] * 300 + after[:-1])
    other = set_logprobs(client, shorter, ids)
    assert not torch.allclose(other[-1], logprobs[-1])


def test_missing_expected_tokens_fails_where_the_sdk_fails_and_the_server_counts(client, tokenizer):
    model_input, before, after = multimodal(tokenizer, expected_tokens=None)
    with pytest.raises(ValueError, match="ImageChunk expected_tokens needs to be set in order to compute the length"):
        model_input.length
    # The server counts for itself (expected_tokens is advisory): a request sized to the
    # counted positions runs.
    T = len(before) + 300 + len(after)
    datum = types.Datum(model_input=model_input, loss_fn_inputs={
        "target_tokens": np.zeros(T, dtype=np.int64), "weights": np.zeros(T, dtype=np.float32)})
    [out] = client.forward([datum], "cross_entropy").result().loss_fn_outputs
    assert out["logprobs"].shape == [T]


@pytest.mark.parametrize("wrong", [299, 301, 391])
def test_wrong_expected_tokens_is_rejected_with_the_servers_400(client, tokenizer, wrong):
    model_input, _, _ = multimodal(tokenizer, expected_tokens=wrong)
    before = client.lora_state()
    with pytest.raises(BadRequestError) as raised:
        client.forward_backward([set_request(model_input, label_token_ids(tokenizer, LABELS))], "cross_entropy").result()
    assert str(raised.value) == f"Error code: 400 - {{'detail': 'Expected {wrong} tokens, got 300 from image'}}"
    assert raised.value.status_code == 400
    assert_same_tensors(client.lora_state(), before)


def test_declared_format_must_match_the_bytes(client, tokenizer):
    model_input, _, _ = multimodal(tokenizer, fmt="png")
    jpeg_declared = model_input.model_copy(update={"chunks": [
        c.model_copy(update={"format": "jpeg"}) if isinstance(c, types.ImageChunk) else c for c in model_input.chunks]})
    with pytest.raises(BadRequestError, match="declared format 'jpeg' but its bytes are PNG"):
        client.forward([set_request(jpeg_declared, label_token_ids(tokenizer, LABELS))], "cross_entropy").result()


def test_custom_loss_and_sampling_take_image_prompts(client, tokenizer):
    model_input, _, _ = multimodal(tokenizer, width=224, height=224, expected_tokens=64)
    ids = label_token_ids(tokenizer, LABELS)
    datum = set_request(model_input, ids)

    def mass(data, logprobs_list):
        loss = -sum(torch.logsumexp(lp[-1], dim=-1) for lp in logprobs_list)
        return loss, {}

    result = client.forward_backward_custom([datum], mass).result()
    assert result.loss_fn_outputs[0]["logprobs"].shape == [model_input.length, len(ids)]
    client.optim_step(types.AdamParams(learning_rate=0.0)).result()  # clear the gradients

    sampler = client.save_weights_and_get_sampling_client().result()
    forward_rows = set_logprobs(client, model_input, ids)
    response = sampler.sample(model_input, num_samples=1, sampling_params=types.SamplingParams(max_tokens=2, temperature=0.0),
                              topk_prompt_logprobs=len(ids)).result()
    assert len(response.sequences[0].tokens) >= 1
    assert len(response.topk_prompt_logprobs) == model_input.length
    # The sampler and the training client agree on the last row (the sampler's logits there
    # decide the first sampled token; compare the label logprobs through compute_logprobs).
    for k, label in enumerate(ids[:3]):
        scored = types.ModelInput(chunks=[*model_input.chunks, types.EncodedTextChunk(tokens=[label])])
        logprob = sampler.compute_logprobs(scored).result()[-1]
        assert logprob == pytest.approx(float(forward_rows[-1, k]), abs=1e-4)
