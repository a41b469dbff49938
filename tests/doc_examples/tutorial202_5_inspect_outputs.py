# Tinker doc example `tutorial202_5_inspect_outputs`, checked by tests/test_tinker_doc_examples.py.
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
#   Needs ce_result and is_result from tutorial202_4, which fails at importance_sampling,
#   so this cell never runs offline. Even with is_result, `ce_logprobs[-3:]` would raise
#   TypeError: loss_fn_outputs[0]['logprobs'] is a tinker.TensorData, which has no
#   __getitem__ in tinker 0.38 (same SDK type offline and online).
# DEPENDS: tutorial202_4_run_forward_backward
# RUN: exec
# EXPECTED: xfail RequestFailedError
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
# Cross-entropy returns logprobs of target tokens
ce_logprobs = ce_result.loss_fn_outputs[0]["logprobs"]
print("cross_entropy logprobs (last 3 tokens):", ce_logprobs[-3:])

# Importance sampling also returns logprobs
is_logprobs = is_result.loss_fn_outputs[0]["logprobs"]
print("importance_sampling logprobs (last 3):", is_logprobs[-3:])
