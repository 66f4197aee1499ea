"""The baseline trainer: proves a built set is learnable and finds its suspect labels.

``loop.train`` trains a torch-only ResNet on an export, ``report.write_reports``
writes what it learnt, and ``requeue`` sends the suspects back to the annotators.
Importing this package does not import torch: the CLI and the web app load it
freely; only ``loop``, ``augment``, ``resnet`` and ``report`` need the ``train`` extra.
"""
