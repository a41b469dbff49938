"""tinker_offline: the part of the tinker SDK this book uses, on a real model on the CPU.

    import tinker_offline
    service_client = tinker_offline.ServiceClient()
    training_client = service_client.create_lora_training_client(
        base_model="HuggingFaceTB/SmolLM2-135M-Instruct", rank=16, seed=0
    ).result()

Data types are tinker's own (``tinker.types``), so datum-building and loss code is the same
on both backends.
"""

import warnings

# transformers pulls in tqdm.auto, which warns inside Jupyter kernels without ipywidgets;
# the engine shows no progress bars, so the warning would only clutter every chapter.
warnings.filterwarnings("ignore", message="IProgress not found")

from .model_store import (  # noqa: E402
    SUPPORTED_BASE_MODELS,
    ModelNotInstalledError,
    UnsupportedBaseModelError,
)
from .sampling_client import SamplingClient  # noqa: E402
from .service_client import ServiceClient  # noqa: E402
from .training_client import TrainingClient  # noqa: E402

DEFAULT_BASE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"

__all__ = [
    "DEFAULT_BASE_MODEL",
    "SUPPORTED_BASE_MODELS",
    "ModelNotInstalledError",
    "SamplingClient",
    "ServiceClient",
    "TrainingClient",
    "UnsupportedBaseModelError",
]
