"""Image chunks: how many positions an image takes, and what the text model sees there.

On Tinker a vision-language model turns an ``ImageChunk`` into ``expected_tokens`` positions
and the server rejects a chunk whose ``expected_tokens`` differs from its own count, with
``Error code: 400 - {'detail': 'Expected 63 tokens, got 70 from image'}``
(tinker-cookbook issue #170, on Qwen/Qwen3-VL-30B-A3B-Instruct).

The offline engine counts the same way for Qwen3-VL: transformers' Qwen2-VL image processor
(the class ``AutoImageProcessor`` picks for ``qwen3_vl``) with the parameters of Qwen3-VL's
published ``preprocessor_config.json`` below, and tinker-cookbook's formula
(``renderers/base.py:image_to_chunk``, 0.6.1)::

    processor.get_number_of_image_patches(height, width, images_kwargs={}) // processor.merge_size**2

SmolLM2 cannot see pixels. Every image position gets the same placeholder input token
(``PLACEHOLDER_TOKEN``), so images count toward ``T`` and shift every later row exactly as on
Tinker, but their content does not reach the model.
"""

from __future__ import annotations

import functools
import io

from tinker import types

from .futures import BadRequest

#: Qwen3-VL's image processor parameters, from its ``preprocessor_config.json`` on the
#: Hugging Face hub (Qwen/Qwen3-VL-2B-Instruct, -8B-Instruct: the same 390-byte file):
#: ``{"size": {"longest_edge": 16777216, "shortest_edge": 65536}, "patch_size": 16,
#: "temporal_patch_size": 2, "merge_size": 2, ..., "image_processor_type":
#: "Qwen2VLImageProcessorFast"}``. The Qwen3-VL README (QwenLM/Qwen3-VL) states that
#: ``shortest_edge``/``longest_edge`` are the min/max pixel budget and that Qwen3-VL's patch
#: size is 16 (compression 32 per side).
QWEN3_VL_IMAGE_PROCESSOR = {
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "size": {"shortest_edge": 65536, "longest_edge": 16777216},
}

#: SmolLM2's ``<|endoftext|>`` (id 0): the input at every image position offline.
PLACEHOLDER_TOKEN = 0

_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG"}


@functools.lru_cache(maxsize=1)
def qwen3_vl_image_processor():
    """transformers' Qwen2-VL image processor (PIL backend) with Qwen3-VL's parameters."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return Qwen2VLImageProcessorPil(**QWEN3_VL_IMAGE_PROCESSOR)


def qwen3_vl_image_tokens(height: int, width: int) -> int:
    """Positions Qwen3-VL gives a ``height`` x ``width`` image (tinker-cookbook's formula)."""
    processor = qwen3_vl_image_processor()
    return processor.get_number_of_image_patches(height, width, images_kwargs={}) // processor.merge_size**2


def image_height_width(chunk: types.ImageChunk) -> tuple[int, int]:
    """The decoded image's (height, width); a clear 400 if the bytes are not that format."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(chunk.data)) as image:
            found, (width, height) = image.format, image.size
    except Exception as error:  # noqa: BLE001 - any decoding failure is the same bad request
        raise BadRequest(f"Could not decode image ({chunk.format}): {error}") from None
    if found != _PIL_FORMATS[chunk.format]:
        raise BadRequest(f"Image declared format {chunk.format!r} but its bytes are {found}")
    return height, width


def image_positions(chunk: types.ImageChunk) -> int:
    """How many positions the server gives ``chunk``: its own count from the image.

    ``expected_tokens`` is advisory, as on Tinker (tinker-cookbook #170: "you're allowed to
    drop the ``expected_tokens`` parameter ... those are simply advisory"): when it is set and
    differs from the count, the request is rejected with the server's 400. When it is not set,
    the request runs; only the client-side ``model_input.length`` refuses (the SDK's own
    ValueError), so you cannot size ``target_tokens`` without it.
    """
    height, width = image_height_width(chunk)
    counted = qwen3_vl_image_tokens(height, width)
    if chunk.expected_tokens is not None and chunk.expected_tokens != counted:
        raise BadRequest(f"Expected {chunk.expected_tokens} tokens, got {counted} from image")
    return counted
