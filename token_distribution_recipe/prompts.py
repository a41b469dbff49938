"""An example's messages as a ``tinker.types.ModelInput`` ending in the prefill, so that the
next token is the label.

On Tinker, tinker-cookbook's renderer builds it (``renderer.build_generation_prompt(messages,
prefill=...)``, tinker-cookbook 0.6.1 ``renderers/base.py``); for a Qwen3-VL renderer each
image becomes an ``ImageChunk`` whose ``expected_tokens`` comes from the model's image
processor (``image_to_chunk``). Offline, the Qwen renderer and image processor cannot be
downloaded, so ``OfflinePrompts`` builds the same sequence of chunks by hand: the chat
template's text around each image, and each image as a JPEG ``ImageChunk`` with Qwen3-VL's
position count (``tinker_offline.images.qwen3_vl_image_tokens``). SmolLM2's template has no
``<|vision_start|>``/``<|vision_end|>`` tokens, so those two wrappers are the one difference.
"""

from __future__ import annotations

import io
from pathlib import Path

from tinker import types

from .data import load_image

IMAGE_MARKER = "\uFFFCimage\uFFFC"  # stands for an image in the template's text; never in data


def with_images_loaded(messages, base_dir):
    """The messages with each image reference replaced by the PIL image it names."""
    loaded = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = [dict(part, image=load_image(part["image"], base_dir)) if part["type"] == "image" else part
                       for part in content]
        loaded.append(dict(message, content=content))
    return loaded


class TinkerPrompts:
    """tinker-cookbook's renderer (``get_renderer(renderer_name, tokenizer, image_processor)``)."""

    def __init__(self, model_name, renderer_name, tokenizer):
        from tinker_cookbook.image_processing_utils import get_image_processor
        from tinker_cookbook.renderers import get_renderer

        self.renderer = get_renderer(renderer_name, tokenizer, get_image_processor(model_name))

    def model_input(self, messages, prefill):
        return self.renderer.build_generation_prompt(messages, prefill=prefill or None)


class OfflinePrompts:
    """The same chunks by hand: the tokenizer's chat template, images as Qwen3-VL counts them."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def _image_chunk(self, image):
        from tinker_offline.images import qwen3_vl_image_tokens

        jpeg = io.BytesIO()
        image.save(jpeg, format="JPEG")  # the cookbook's image_to_chunk sends JPEG too
        return types.ImageChunk(data=jpeg.getvalue(), format="jpeg",
                                expected_tokens=qwen3_vl_image_tokens(image.height, image.width))

    def model_input(self, messages, prefill):
        images, flat = [], []
        for message in messages:
            content = message["content"]
            if isinstance(content, list):
                pieces = []
                for part in content:
                    if part["type"] == "image":
                        images.append(part["image"])
                    pieces.append(IMAGE_MARKER if part["type"] == "image" else part["text"])
                content = "".join(pieces)
            flat.append({"role": message["role"], "content": content})
        text = self.tokenizer.apply_chat_template(flat, tokenize=False, add_generation_prompt=True) + prefill
        texts = text.split(IMAGE_MARKER)
        chunks = [types.EncodedTextChunk(tokens=self.tokenizer.encode(texts[0], add_special_tokens=False))]
        for image, after in zip(images, texts[1:]):
            chunks.append(self._image_chunk(image))
            chunks.append(types.EncodedTextChunk(tokens=self.tokenizer.encode(after, add_special_tokens=False)))
        return types.ModelInput(chunks=[c for c in chunks if isinstance(c, types.ImageChunk) or c.length > 0])


def prompt_builder(backend, model_name, renderer_name, tokenizer):
    """The renderer on Tinker, the hand-built chunks offline."""
    return TinkerPrompts(model_name, renderer_name, tokenizer) if backend == "tinker" else OfflinePrompts(tokenizer)


def example_model_input(builder, example, prefill, base_dir):
    """One example's ModelInput; raises ValueError for an image that cannot be loaded."""
    return builder.model_input(with_images_loaded(example.messages, Path(base_dir)), prefill)
