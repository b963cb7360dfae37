"""Rebuilding networks from checkpoints."""

from __future__ import annotations

import torch

from unetlab.checkpoint import load_trained_model
from unetlab.models import ResNetUNet


def test_pretrained_encoder_checkpoint_loads_without_the_imagenet_file(tmp_path) -> None:
    net = ResNetUNet(in_channels=1, num_classes=2, encoder="resnet18")
    config = {
        "model": {
            "_target_": "unetlab.models.ResNetUNet",
            "in_channels": 1,
            "num_classes": 2,
            "encoder": "resnet18",
            "encoder_weights": "imagenet",
            "weights_path": str(tmp_path / "deleted-after-training.pth"),
        }
    }
    path = tmp_path / "model.ckpt"
    state = {f"net.{key}": value for key, value in net.state_dict().items()}
    torch.save({"state_dict": state, "unetlab_config": config}, path)

    trained = load_trained_model(path)
    for key, value in net.state_dict().items():
        assert torch.equal(trained.net.state_dict()[key], value), key
    assert not trained.net.training
