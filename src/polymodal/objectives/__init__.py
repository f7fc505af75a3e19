"""Training objectives: loss modules on model outputs (``ClipLoss``), and the :class:`Objective`
each training run minimises (model + batch → loss) through the one engine in ``polymodal.train``."""

from .base import Objective, split_batch
from .classification import Classification
from .contrastive import BindToTargets, ClipLoss, Contrastive, gather_features

__all__ = ["BindToTargets", "Classification", "ClipLoss", "Contrastive", "Objective", "gather_features",
           "split_batch"]
