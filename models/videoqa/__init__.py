"""Long-form video QA (GSMT): gated state-space layer, multimodal transformer, C³ objective."""

from models.videoqa.c3 import c3_loss
from models.videoqa.model import (
    SLOTS,
    MeanPoolQA,
    VideoQAConfig,
    VideoQAModel,
    build_videoqa_model,
)

__all__ = ["SLOTS", "MeanPoolQA", "VideoQAConfig", "VideoQAModel", "build_videoqa_model",
           "c3_loss"]
