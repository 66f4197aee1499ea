"""ResNet-18/34/50 written with torch alone.

torchvision has no CPU build on the machines we target, and the baseline needs
only the three classic depths, so they are written out here (He et al., 2015,
with the "v1.5" stride on the 3x3 convolution of bottlenecks). ``width`` scales
every stage, so tests and CPU smoke runs can use a narrow network; the last
BatchNorm of each residual branch starts at zero, which makes the deep nets train
stably from scratch with large batches (Goyal et al., 2017).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


def _conv1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(c_in, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        nn.init.zeros_(self.bn2.weight)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(c_in, planes * self.expansion, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.downsample(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv1x1(c_in, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        nn.init.zeros_(self.bn3.weight)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(c_in, planes * self.expansion, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.downsample(x))


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(_conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out))


class ResNet(nn.Module):
    """The ImageNet ResNet: 7x7 stem, four stages, global average pool, linear head."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, int, int, int],
        num_classes: int,
        width: int = 64,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages: list[nn.Module] = []
        c_in = width
        for i, depth in enumerate(layers):
            planes = width * 2**i
            blocks: list[nn.Module] = []
            for j in range(depth):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(block(c_in, planes, stride))
                c_in = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


@dataclass(frozen=True)
class ArchSpec:
    block: type[BasicBlock] | type[Bottleneck]
    layers: tuple[int, int, int, int]


ARCHS: dict[str, ArchSpec] = {
    "resnet18": ArchSpec(BasicBlock, (2, 2, 2, 2)),
    "resnet34": ArchSpec(BasicBlock, (3, 4, 6, 3)),
    "resnet50": ArchSpec(Bottleneck, (3, 4, 6, 3)),
}


def build_model(arch: str, num_classes: int, width: int = 64) -> ResNet:
    """A freshly initialised network; the caller seeds torch first for repeatable weights."""
    spec = ARCHS[arch]
    return ResNet(spec.block, spec.layers, num_classes, width)


def load_init(model: nn.Module, state: dict[str, Tensor]) -> list[str]:
    """Copy matching weights from a user's checkpoint; returns the names left as initialised.

    A checkpoint trained on other classes has a head of another shape: it is skipped
    (and reported) rather than refused, which is what fine-tuning wants.
    """
    own = model.state_dict()
    skipped = [k for k in own if k not in state or state[k].shape != own[k].shape]
    model.load_state_dict(
        {k: v for k, v in state.items() if k in own and k not in skipped}, strict=False
    )
    return skipped
