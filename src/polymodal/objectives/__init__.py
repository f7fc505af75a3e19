"""Training objectives: loss modules on model outputs (``ClipLoss``), and the :class:`Objective`
each training run minimises (model + batch → loss) through the one engine in ``polymodal.train``."""

from .base import Objective, split_batch
from .choice import BinaryMatch, MultipleChoice
from .classification import Classification
from .contrastive import BindToTargets, ClipLoss, Contrastive, gather_features
from .masked_lm import MaskedLMAndMatching, mask_tokens
from .masked_multimodal import MaskedMultimodal, mask_regions
from .soft_score import SoftScoreBCE
from .video_text import VideoMultipleChoice, VideoTextContrastive

__all__ = ["BinaryMatch", "BindToTargets", "Classification", "ClipLoss", "Contrastive", "MaskedLMAndMatching",
           "MaskedMultimodal", "MultipleChoice", "Objective", "SoftScoreBCE", "VideoMultipleChoice",
           "VideoTextContrastive",
           "gather_features", "mask_regions", "mask_tokens", "split_batch"]
