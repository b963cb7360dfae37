"""``python -m unetlab``: the commands of unetlab, one line each."""

from __future__ import annotations

COMMANDS = {
    "unetlab-train": "train a network: unetlab-train [hydra overrides], e.g. model=resnet_unet",
    "unetlab-eval": "score a checkpoint: unetlab-eval ckpt_path=PATH [data overrides]",
    "unetlab-predict": "segment images: unetlab-predict ckpt_path=PATH input=FILE|DIR|GLOB output=DIR",
    "unetlab-export": "export a checkpoint: unetlab-export ckpt_path=PATH format=onnx|torchscript|bioimageio output=FILE",
}


def main() -> None:
    """Print each command with what it does; ``COMMAND --help`` tells more."""
    width = max(map(len, COMMANDS))
    for command, summary in COMMANDS.items():
        print(f"{command:<{width}}  {summary}")
    print(f"{'':<{width}}  (also python -m unetlab.<train|eval|predict|export>; COMMAND --help)")


if __name__ == "__main__":
    main()
