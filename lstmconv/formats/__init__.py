"""The format families, one folder each (``keras/``, ``torch/``, ``onnx/``), and ``npz.py``.

A family's ``__init__`` is its face (``NAME``, ``GATE_ORDER``, ``check``, ``layout``) and imports
no framework; ``names.py`` holds the family's vocabulary against the IR, ``files.py`` reads files
without the framework, and ``live.py`` is the only module that imports the framework. What a
format is (its endings, the roles of its modules, what each needs) is its record in
:mod:`lstmconv.registry`.
"""
