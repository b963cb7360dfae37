"""Train a U-Net: ``python train.py [hydra overrides]`` (see ``python train.py --help``)."""

from unetlab.train import main

if __name__ == "__main__":
    main()
