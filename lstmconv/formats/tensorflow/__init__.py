"""TensorFlow's own files: the face of the family (imports no TensorFlow).

``tf-checkpoint`` (``<prefix>.index`` + ``.data-*`` shards) and ``savedmodel`` (a folder with
``saved_model.pb`` and ``variables/``) are read by :mod:`.checkpoint` and :mod:`.savedmodel`
with NumPy alone. TF1 cells keep one kernel over ``[x; h]``: ``rnn/lstm_cell/kernel`` (I+H, 4H),
gates ``i·j·f·o``, with ``forget_bias`` added at run time; Keras layers keep Keras's tensors.
"""

from .names import GATE_ORDER, check, layout

NAME = "tensorflow"

__all__ = ["GATE_ORDER", "NAME", "check", "layout"]
