# Tinker doc example `losses_old_09_dro_config`, checked by tests/test_tinker_doc_examples.py.
#
# SOURCE:
#   https://tinker-docs.thinkingmachines.ai/losses (the old docs site, "Loss functions in Tinker")
#   markdown source: thinking-machines-lab/tinker-cookbook docs/losses.mdx
#     @ a2b1b820d4802cb8b2b016d7b202d6c3bf65fdd7
# FIDELITY:
#   exact copy of the code block (not reconstructed)
#
# Substitutions: plain string replacements, applied in this order; the test asserts
# that each one occurs in the text (and reads them from these lines).
# SUBSTITUTE: (none)
#
# Names the test defines before the example runs (the page defines them earlier or
# says they exist):
# PREPARED: data, training_client
#   data: [one RL datum], as in losses_old_05_ppo_config
#   training_client: the module's shared tinker_offline LoRA training client (SmolLM2-135M, rank 16)
# DEPENDS: (none)
# RUN: top-level await: compiled with ast.PyCF_ALLOW_TOP_LEVEL_AWAIT and run with asyncio.run
# EXPECTED: xfail RequestFailedError
# AFTER the example, the test checks:
#   fwd_bwd_result.result() (the example stops at the future)
# (Reasons for every xfail are in tests/test_tinker_doc_examples.py.)
# ===== verbatim example below this line (do not edit) =====
fwd_bwd_result = await training_client.forward_backward_async(
    data=data,
    loss_fn="dro",
    loss_fn_config={"beta": 0.05}
)
