"""The Hydra configs of unetlab, installed as the package ``unetlab.conf``."""
