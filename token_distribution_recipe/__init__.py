"""A recipe that trains a model's distribution over a fixed set of label tokens at the
position after a prompt, on your own JSONL file of prompts (text and images) and targets.

    python -m token_distribution_recipe.train \\
        train_file=token_distribution_recipe/example/train.jsonl \\
        labels_file=token_distribution_recipe/example/labels.json log_path=/tmp/run

On Tinker when ``TINKER_API_KEY`` is set, else offline with ``tinker_offline``; the code is
the same apart from the service client. Modules, one concern each:

- ``data``: the file format (``data.FORMAT``), reading and image loading;
- ``prompts``: the messages as a ``tinker.types.ModelInput`` (tinker-cookbook's renderer on
  Tinker, the same chunks by hand offline);
- ``checks``: what is checked before anything is sent, with a message per example;
- ``plan``: the plan printed before training (``T``, passes, request sizes);
- ``train``: the configuration (``chz``) and the training loop;
- ``plots``: the curves and the before/after figure.
"""
