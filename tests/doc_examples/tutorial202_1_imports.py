# Tinker doc example `tutorial202_1_imports`, checked by tests/test_tinker_doc_examples.py.
#
# SOURCE:
#   thinking-machines-lab/tinker-cookbook tutorials/202_loss_functions.py
#     @ 6a923104a2b62d8b23188b9155c0b85c77859cc2 (a marimo notebook; rendered as
#     https://tinker-docs.thinkingmachines.ai/tutorials/core-concepts/loss-functions)
# FIDELITY:
#   exact copy of one code cell, with marimo's 4-space cell indentation removed and the cell's
#   closing `return ...` line dropped (the rendered page omits it too);
#   test_tutorial202_cells_match_marimo_source checks it against tutorial202_full_marimo_file.py
#
# Substitutions: plain string replacements, applied in this order; the test asserts
# that each one occurs in the text (and reads them from these lines).
# SUBSTITUTE: (none)
#
# Names the test defines before the example runs (the page defines them earlier or
# says they exist):
# PREPARED: (none)
# DEPENDS: (none)
# RUN: exec
# EXPECTED: pass
# AFTER the example, the test checks:
#   tinker, torch and TensorData are defined
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")

import tinker
import torch
from tinker import TensorData
