"""The chest X-ray classifier: a half-width ResNet-18 on one grayscale channel.

Half the channels of ResNet-18 (32-64-128-256) keep the checkpoint near 11 MB and
training within an hour on a 2-core CPU, which a full ResNet-18 or DenseNet-121
cannot (measured in the model card), while keeping the residual design that
trains reliably from scratch.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from core.findings import FINDINGS

ARCHITECTURE_NAME = "cxr-resnet18-half"
_WIDTHS = (32, 64, 128, 256)
_BLOCKS = (2, 2, 2, 2)


def _stage(in_channels: int, out_channels: int, blocks: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )
    layers = [BasicBlock(in_channels, out_channels, stride, downsample)]
    layers += [BasicBlock(out_channels, out_channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ChestXrayNet(nn.Module):
    """Multi-label classifier returning one logit per finding.

    Attributes:
        stem: 7x7 convolution and max-pool on the single input channel.
        stages: Four residual stages; the last one is the Grad-CAM target.
        head: Dropout and the linear layer producing ``len(FINDINGS)`` logits.
    """

    def __init__(self, num_findings: int = len(FINDINGS), dropout: float = 0.2) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, _WIDTHS[0], 7, 2, 3, bias=False),
            nn.BatchNorm2d(_WIDTHS[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        stages = []
        in_channels = _WIDTHS[0]
        for index, (width, blocks) in enumerate(zip(_WIDTHS, _BLOCKS, strict=True)):
            stages.append(_stage(in_channels, width, blocks, 1 if index == 0 else 2))
            in_channels = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_channels, num_findings))
        self.embedding_size = in_channels

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Last convolutional feature map, shape (N, 256, H/32, W/32)."""
        return self.stages(self.stem(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate features (N, 256), used by the out-of-distribution score."""
        return self.feature_map(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_findings) for standardised images (N, 1, S, S)."""
        return self.head(self.embed(x))
